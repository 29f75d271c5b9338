import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import {
  type ClientDuplexStream,
  credentials,
  type GrpcObject,
  loadPackageDefinition,
  type ServiceClientConstructor,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControlServer } from './server.js';
import { startTestServer } from './testing/harness.js';
import { makeTestPki, type TestPki } from './testing/pki.js';

// The reflection client is built from the reflection.proto that @grpc/reflection ships (grpcurl is
// not packaged for Debian): the same wire protocol grpcurl speaks.
const require = createRequire(import.meta.url);
const protoRoot = join(dirname(require.resolve('@grpc/reflection')), '..', 'proto');

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

let pki: TestPki;
let server: ControlServer;
let stream: ClientDuplexStream<object, ReflectionResponse>;
const responses: ReflectionResponse[] = [];

function ask(req: object): Promise<ReflectionResponse> {
  const want = responses.length + 1;
  stream.write(req);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no reflection answer within 5 s')), 5000);
    const check = () => {
      if (responses.length >= want) {
        clearTimeout(t);
        stream.off('data', check);
        resolve(responses[want - 1]!);
      }
    };
    stream.on('data', check);
    check();
  });
}

beforeAll(async () => {
  pki = await makeTestPki();
  server = await startTestServer(pki);
  const def = loadSync('grpc/reflection/v1/reflection.proto', { includeDirs: [protoRoot], keepCase: true });
  const pkg = loadPackageDefinition(def) as GrpcObject;
  const v1 = ((pkg.grpc as GrpcObject).reflection as GrpcObject).v1 as GrpcObject;
  const Client = v1.ServerReflection as ServiceClientConstructor;
  const creds = credentials.createSsl(
    Buffer.from(pki.ca.certPem),
    Buffer.from(pki.operator.keyPem),
    Buffer.from(pki.operator.certPem),
  );
  const client = new Client(`localhost:${server.port}`, creds);
  stream = (
    client as unknown as { ServerReflectionInfo(): ClientDuplexStream<object, ReflectionResponse> }
  ).ServerReflectionInfo();
  stream.on('data', (r: ReflectionResponse) => responses.push(r));
  stream.on('error', () => {});
});
afterAll(async () => {
  stream.cancel();
  await server.close();
});

describe('server reflection', () => {
  it('lists the onehost services and health', async () => {
    const r = await ask({ list_services: '*' });
    const names = r.list_services_response!.service.map((s) => s.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'onehost.v1.Membership',
        'onehost.v1.Exports',
        'onehost.v1.Switch',
        'grpc.health.v1.Health',
      ]),
    );
  });

  it('returns the descriptors that declare a symbol, with their dependencies', async () => {
    const r = await ask({ file_containing_symbol: 'onehost.v1.Membership' });
    const files = r.file_descriptor_response!.file_descriptor_proto.map((b) =>
      Buffer.from(b).toString('latin1'),
    );
    // proto-loader merges the files of one package into one descriptor (named after one of them).
    const onehost = files.find((f) => f.includes('onehost.v1'));
    for (const symbol of ['Membership', 'JoinRequest', 'RegisterMountRequest', 'ExplainRequest'])
      expect(onehost).toContain(symbol);
    expect(files.some((f) => f.includes('google/protobuf/struct.proto'))).toBe(true);
    const health = await ask({ file_containing_symbol: 'grpc.health.v1.Health' });
    const text = health
      .file_descriptor_response!.file_descriptor_proto.map((b) => Buffer.from(b).toString('latin1'))
      .join();
    expect(text).toContain('HealthCheckRequest');
    expect(text).not.toContain(protoRoot);
  });

  it('answers NOT_FOUND for an unknown symbol', async () => {
    const r = await ask({ file_containing_symbol: 'onehost.v1.NoSuchThing' });
    expect(r.error_response?.error_code).toBe(5);
  });
});
