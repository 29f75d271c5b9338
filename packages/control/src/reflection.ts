import { dirname } from 'node:path';
import type { Server } from '@grpc/grpc-js';
import { loadFileDescriptorSetFromBuffer, loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { descriptorSet } from '@onehost/proto';
import { protoPath as healthProtoPath } from 'grpc-health-check';

/**
 * addReflection serves gRPC server reflection (v1 and v1alpha) for the onehost services and
 * grpc.health.v1, so grpcurl and similar tools work without .proto files. Throws when the proto
 * package's descriptor set is missing (not built).
 */
export function addReflection(server: Server): void {
  const onehost = loadFileDescriptorSetFromBuffer(descriptorSet());
  // Loaded relative to the package's proto root so the file is named health/v1/health.proto.
  const health = loadSync('health/v1/health.proto', {
    includeDirs: [dirname(dirname(dirname(healthProtoPath)))],
  });
  const all: PackageDefinition = { ...onehost, ...health };
  new ReflectionService(all).addToServer(server);
}
