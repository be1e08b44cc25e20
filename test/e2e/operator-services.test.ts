// grpc.health.v1.Health and server reflection, called as operators' tools call
// them: with clients built at run time from the standard services' wire
// contracts (declared below from the gRPC specs), not the project's code.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { startControlPlane, type ControlPlaneProcess } from '../helpers/grid.js';
import { makeTestCerts } from '../helpers/certs.js';

// The standard services' messages, as the gRPC health-checking and reflection specs define them.
const STANDARD = `
syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse { enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; } ServingStatus status = 1; }
service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }
`;
const REFLECTION = `
syntax = "proto3";
package grpc.reflection.v1;
message ServerReflectionRequest { string host = 1; oneof message_request { string file_by_filename = 3; string file_containing_symbol = 4; string list_services = 7; } }
message ServiceResponse { string name = 1; }
message ListServiceResponse { repeated ServiceResponse service = 1; }
message FileDescriptorResponse { repeated bytes file_descriptor_proto = 1; }
message ErrorResponse { int32 error_code = 1; string error_message = 2; }
message ServerReflectionResponse {
  string valid_host = 1; ServerReflectionRequest original_request = 2;
  oneof message_response { FileDescriptorResponse file_descriptor_response = 4; ListServiceResponse list_services_response = 6; ErrorResponse error_response = 7; }
}
service ServerReflection { rpc ServerReflectionInfo(stream ServerReflectionRequest) returns (stream ServerReflectionResponse); }
`;

function loadStandard(): grpc.GrpcObject {
  const dir = mkdtempSync(join(tmpdir(), 'grid-std-proto-'));
  writeFileSync(join(dir, 'health.proto'), STANDARD);
  writeFileSync(join(dir, 'reflection.proto'), REFLECTION);
  return grpc.loadPackageDefinition(protoLoader.loadSync([join(dir, 'health.proto'), join(dir, 'reflection.proto')], { enums: String, keepCase: true }));
}
type Ctor = new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client & Record<string, (...args: unknown[]) => unknown>;

let db: TestDatabase;
let cp: ControlPlaneProcess;
test.before(async () => {
  db = await createTestDatabase();
  cp = await startControlPlane(db.url);
});
test.after.always(async () => {
  await cp?.stop();
  await db?.drop();
});

const std = loadStandard();
const Health = ((std.grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject;
const Reflection = ((std.grpc as grpc.GrpcObject).reflection as grpc.GrpcObject).v1 as grpc.GrpcObject;

function check(address: string, credentials: grpc.ChannelCredentials, service: string): Promise<{ status: string } | grpc.ServiceError> {
  const client = new (Health.Health as unknown as Ctor)(address, credentials);
  return new Promise((resolve) =>
    (client.Check as (r: unknown, o: unknown, cb: (e: grpc.ServiceError | null, r: { status: string }) => void) => void)({ service }, { deadline: Date.now() + 5000 }, (err, res) => {
      client.close();
      resolve(err ?? res);
    }),
  );
}

test('Health answers SERVING for the server and each Grid service, NOT_FOUND for an unknown one', async (t) => {
  const insecure = grpc.credentials.createInsecure();
  t.deepEqual(await check(cp.address, insecure, ''), { status: 'SERVING' });
  t.deepEqual(await check(cp.address, insecure, 'grid.v1.JobService'), { status: 'SERVING' });
  const unknown = await check(cp.address, insecure, 'no.such.Service');
  t.is((unknown as grpc.ServiceError).code, grpc.status.NOT_FOUND);
});

test('reflection lists Grid\'s services and serves the file that defines JobService', async (t) => {
  const client = new (Reflection.ServerReflection as unknown as Ctor)(cp.address, grpc.credentials.createInsecure());
  const stream = (client.ServerReflectionInfo as () => grpc.ClientDuplexStream<unknown, Record<string, unknown>>)();
  const answers: Record<string, unknown>[] = [];
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (d) => answers.push(d));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  stream.write({ list_services: '' });
  stream.write({ file_containing_symbol: 'grid.v1.JobService' });
  stream.end();
  await done;
  client.close();
  const names = (answers[0]!.list_services_response as { service: { name: string }[] }).service.map((s) => s.name).sort();
  t.deepEqual(names, ['grid.v1.AgentService', 'grid.v1.CronService', 'grid.v1.JobService', 'grid.v1.NodeService', 'grid.v1.TokenService', 'grpc.health.v1.Health']);
  const files = (answers[1]!.file_descriptor_response as { file_descriptor_proto: Buffer[] }).file_descriptor_proto;
  t.true(files.some((f) => f.toString('latin1').includes('grid/v1/job.proto')));
});

test('over TLS, health needs no token (probes carry none)', async (t) => {
  const certs = makeTestCerts();
  const tls = await startControlPlane(db.url, certs.serverArgs);
  try {
    t.deepEqual(await check(tls.address, certs.credentials(), ''), { status: 'SERVING' });
  } finally {
    await tls.stop();
  }
});
