import type { PeerCertificate } from 'node:tls';
import { ControlError } from '../control-error.js';
import { identityOfSubject } from './certificates.js';
import type { Identity, Role } from './roles.js';

/** Call is any grpc-js server call (they all expose the TLS peer). */
export interface Call {
  getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null;
}

/**
 * peerIdentity is the role and name of the caller's client certificate, verified by TLS against the
 * cluster CA. Throws ControlError UNAUTHENTICATED when the call carries no verified certificate or
 * one without a onehost role and name.
 */
export function peerIdentity(call: Call): Identity {
  const cert = call.getAuthContext()?.sslPeerCertificate;
  if (cert === undefined)
    throw new ControlError('UNAUTHENTICATED', 'a client certificate from the cluster CA is required');
  const identity = identityOfSubject(cert.subject as unknown as Record<string, unknown>);
  if (identity === null)
    throw new ControlError('UNAUTHENTICATED', 'the client certificate names no onehost role and name');
  return identity;
}

/**
 * requireNodeSelf lets only the node named `nodeName` through: a node certificate with that name.
 * Throws ControlError UNAUTHENTICATED (see peerIdentity) or PERMISSION_DENIED naming `field`.
 */
export function requireNodeSelf(call: Call, nodeName: string, field = 'node_name'): Identity {
  const who = peerIdentity(call);
  if (who.role !== 'node')
    throw new ControlError('PERMISSION_DENIED', `${field}: a ${who.role} certificate cannot act as a node`);
  if (who.name !== nodeName)
    throw new ControlError(
      'PERMISSION_DENIED',
      `${field}: the certificate is for node ${who.name}, not ${nodeName}`,
    );
  return who;
}

/**
 * requireRole lets through the roles listed. Throws ControlError UNAUTHENTICATED (see peerIdentity) or
 * PERMISSION_DENIED naming the roles needed.
 */
export function requireRole(call: Call, roles: readonly Role[]): Identity {
  const who = peerIdentity(call);
  if (!roles.includes(who.role))
    throw new ControlError(
      'PERMISSION_DENIED',
      `needs a ${roles.join(' or ')} certificate, not ${who.role} ${who.name}`,
    );
  return who;
}
