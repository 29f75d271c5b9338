// ONC RPC (RFC 5531) and XDR (RFC 4506) views, TCP record marking, and the MOUNT v3, NFSv3 and PMAP v2
// pieces the gateway and the switch read or answer. See README.md in this directory.
export * from './call.js';
export * from './mount.js';
export * from './nfs3.js';
export * from './pmap.js';
export * from './record.js';
export * from './reply.js';
export * from './xdr.js';
