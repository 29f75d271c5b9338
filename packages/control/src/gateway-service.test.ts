import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectGateway } from './client.js';
import { ControlError } from './control-error.js';
import { LocalGatewayRegistry } from './gateway-registry.js';
import type { ControlServer } from './server.js';
import type { GatewayBackend, GatewayReload, GatewayStatus } from './switch-backend.js';
import { codeOf, startTestServer, tlsOf } from './testing/harness.js';
import { makeTestPki, type TestPki } from './testing/pki.js';

const STATUS: GatewayStatus = {
  name: 'gw',
  datapath: 'kernel',
  appliedVersion: 7,
  switchVersion: 8,
  lastError: 'syntax error: add rule …',
  functions: [{ function: 'connection', kernel: 1200, user: 3 }],
  userClasses: [{ class: 'first', packets: 3, guardDrops: 0 }],
  flowWrites: 3,
  flowWriteFailures: 0,
  lastApplyMs: 12.5,
};

class Backend implements GatewayBackend {
  stops: boolean[] = [];
  async status(): Promise<GatewayStatus> {
    return STATUS;
  }
  stop(keepDatapath: boolean): void {
    this.stops.push(keepDatapath);
  }
  reloads: { yaml: string; dryRun: boolean }[] = [];
  async reload(yaml: string, dryRun: boolean): Promise<GatewayReload> {
    if (yaml.includes('bad'))
      throw new ControlError('INVALID_ARGUMENT', 'gateway.yaml:3:5 entries.0.port: bad');
    this.reloads.push({ yaml, dryRun });
    return { changes: ['+ tcp/8080 fixed node=n1'], version: 9, applied: !dryRun };
  }
}

let pki: TestPki;
let server: ControlServer;
let bare: ControlServer;
const backend = new Backend();
const registry = new LocalGatewayRegistry({
  name: 'gw',
  address: '127.0.0.1:7443',
  datapath: 'kernel',
  self: () => ({ ready: true, appliedRevision: 0, switchVersion: 8 }),
  now: () => 5000,
});

beforeAll(async () => {
  pki = await makeTestPki();
  server = await startTestServer(pki, { gatewayBackend: backend, gatewayRegistry: registry });
  bare = await startTestServer(pki);
});
afterAll(async () => {
  await server.close();
  await bare.close();
});

describe('Gateway service', () => {
  it('reports the data path to operators and gateways', async () => {
    const op = connectGateway(`127.0.0.1:${server.port}`, tlsOf(pki.operator));
    expect(await op.status()).toEqual(STATUS);
    op.close();
    const gw = connectGateway(`127.0.0.1:${server.port}`, tlsOf(pki.gateway));
    expect((await gw.status()).appliedVersion).toBe(7);
    gw.close();
  });

  it('stops on an operator’s word only, after answering', async () => {
    const node = connectGateway(`127.0.0.1:${server.port}`, tlsOf(pki.nodes.n1!));
    expect((await codeOf(node.stop())).code).toBe(status.PERMISSION_DENIED);
    node.close();
    const op = connectGateway(`127.0.0.1:${server.port}`, tlsOf(pki.operator));
    await op.stop(true);
    await op.stop();
    op.close();
    await new Promise((r) => setImmediate(r));
    expect(backend.stops).toEqual([true, false]);
  });

  it('reloads on an operator’s word only; a refused file keeps its field in the error', async () => {
    const node = connectGateway(`127.0.0.1:${server.port}`, tlsOf(pki.nodes.n1!));
    expect((await codeOf(node.reload('name: gw', false))).code).toBe(status.PERMISSION_DENIED);
    node.close();
    const op = connectGateway(`127.0.0.1:${server.port}`, tlsOf(pki.operator));
    expect(await op.reload('name: gw', true)).toEqual({
      changes: ['+ tcp/8080 fixed node=n1'],
      version: 9,
      applied: false,
    });
    expect(await codeOf(op.reload('bad', false))).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'gateway.yaml:3:5 entries.0.port: bad',
    });
    expect((await codeOf(op.reload('x'.repeat((1 << 20) + 1), false))).details).toMatch(
      /^config_yaml: longer/,
    );
    op.close();
    expect(backend.reloads).toEqual([{ yaml: 'name: gw', dryRun: true }]);
  });

  it('lists the gateways to operators and gateways; drains on an operator’s word only', async () => {
    const node = connectGateway(`127.0.0.1:${server.port}`, tlsOf(pki.nodes.n1!));
    expect((await codeOf(node.listGateways())).code).toBe(status.PERMISSION_DENIED);
    expect((await codeOf(node.drainGateway('gw', true))).code).toBe(status.PERMISSION_DENIED);
    node.close();
    const gw = connectGateway(`127.0.0.1:${server.port}`, tlsOf(pki.gateway));
    expect(await gw.listGateways()).toEqual({
      gateways: [
        {
          name: 'gw',
          controlAddress: '127.0.0.1:7443',
          datapath: 'kernel',
          announcement: 'off',
          health: 'ready',
          appliedRevision: 0,
          switchVersion: 8,
          startedUnixMs: 5000,
          updatedUnixMs: 5000,
          stale: '',
          drained: false,
        },
      ],
      storeRevision: 0,
    });
    expect((await codeOf(gw.drainGateway('gw', true))).code).toBe(status.PERMISSION_DENIED);
    gw.close();
    const op = connectGateway(`127.0.0.1:${server.port}`, tlsOf(pki.operator));
    expect(await codeOf(op.drainGateway('', true))).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'name: "" is not a gateway name (letters, digits, . _ -; up to 63)',
    });
    expect(await codeOf(op.drainGateway('gw2', true))).toEqual({
      code: status.NOT_FOUND,
      details: 'gateway gw2: not registered',
    });
    await op.drainGateway('gw', true);
    expect((await op.listGateways()).gateways[0]).toMatchObject({ health: 'draining', drained: true });
    await op.drainGateway('gw', false);
    expect((await op.listGateways()).gateways[0]).toMatchObject({ health: 'ready', drained: false });
    op.close();
  });

  it('without a gateway attached, says so', async () => {
    const op = connectGateway(`127.0.0.1:${bare.port}`, tlsOf(pki.operator));
    expect(await codeOf(op.status())).toEqual({
      code: status.UNIMPLEMENTED,
      details: 'this server has no gateway attached',
    });
    expect(await codeOf(op.listGateways())).toEqual({
      code: status.UNIMPLEMENTED,
      details: 'this server has no gateway registry',
    });
    op.close();
  });
});
