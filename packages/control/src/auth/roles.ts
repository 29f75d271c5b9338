/**
 * Role is what a certificate lets its holder do: a node joins and heartbeats as itself; an operator
 * (onehostctl) reads and changes the cluster; a gateway serves the API and may watch other gateways.
 * The role is the certificate's subject OU, the name its CN.
 */
export type Role = 'node' | 'operator' | 'gateway';

export const ROLES: readonly Role[] = ['node', 'operator', 'gateway'];

/** CERT_ORGANIZATION is the subject O of every certificate the cluster CA issues. */
export const CERT_ORGANIZATION = 'onehost';

/** Identity is who a verified client certificate names. */
export interface Identity {
  role: Role;
  name: string;
}
