#!/usr/bin/env node
// Committed so that npm links this bin at install time, before the build makes dist/.
import '../dist/net-cli.js';
