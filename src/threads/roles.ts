// The roles of a server's threads and the one rule for what crosses between them.
//
// Client workers own client connections; each server-to-server role (routes, gateways, leaf
// nodes) has one thread that owns every connection of that role and joins the shared layout
// as one more participant (shared.ts records which thread plays which role). nats-server's
// forwarding rules are about where a message came from: a message read from a route is never
// sent to another route nor to a gateway; one read from a gateway goes to local subscribers
// and to the local routes, one hop; only a message published on this server goes everywhere.
// Interest follows the same rule: a thread announces to its peers, as its own, the interest of
// exactly the threads it may hand messages to (so interest learned from gateways is never
// announced to route peers as RS+). Both are read from this table, never from thread numbers.

export const ThreadRole = {
  /** A client worker (workers/worker.ts). */
  worker: 1,
  /** The route thread (workers/route.ts). */
  route: 2,
  /** The gateway thread (workers/gateway.ts). */
  gateway: 3,
  /** The leaf thread (issue 13). */
  leaf: 4,
} as const;
export type ThreadRoleCode = (typeof ThreadRole)[keyof typeof ThreadRole];

const { worker: WORKER, route: ROUTE, gateway: GATEWAY, leaf: LEAF } = ThreadRole;

/**
 * FORWARD[from][to]: a message that a thread of role `from` read from its own connections may
 * be handed to a thread of role `to` (which delivers it to its clients or sends it to its
 * peers).
 */
const FORWARD: Record<ThreadRoleCode, Record<ThreadRoleCode, boolean>> = {
  // Published on this server: to every worker with subscribers and every peer with interest.
  [WORKER]: { [WORKER]: true, [ROUTE]: true, [GATEWAY]: true, [LEAF]: true },
  // Read from a route: local subscribers only (one hop inside a cluster), and the leafs this
  // server is the hub of (the leaf thread sends it only down those connections).
  [ROUTE]: { [WORKER]: true, [ROUTE]: false, [GATEWAY]: false, [LEAF]: true },
  // Read from a gateway: local subscribers, the local routes (one hop into the cluster) and the
  // leafs this server is the hub of.
  [GATEWAY]: { [WORKER]: true, [ROUTE]: true, [GATEWAY]: false, [LEAF]: true },
  // Read from a leaf connection: handled like a local publish. From a leaf this server is the
  // hub of: everywhere; from this server's own hub: local subscribers and further leafs only
  // (queue groups may be served by a route member). That second rule is per connection: the
  // leaf thread applies it (cluster/leaf-control.ts). Leaf to leaf stays inside the leaf thread.
  [LEAF]: { [WORKER]: true, [ROUTE]: true, [GATEWAY]: true, [LEAF]: false },
};

/** May a message read by a thread of role `from` be handed to a thread of role `to`? */
export function mayForward(from: ThreadRoleCode, to: ThreadRoleCode): boolean {
  return FORWARD[from][to];
}

/**
 * Does the interest logged by a thread of role `source` count as local for a thread of role
 * `viewer`, which announces local interest to its peers (RS+ for routes)? Exactly when the
 * viewer may hand what its peers send it to the source: whatever it announces it must deliver.
 */
export function countsAsLocal(viewer: ThreadRoleCode, source: ThreadRoleCode): boolean {
  return mayForward(viewer, source);
}

/**
 * Does a thread of this role hear only the leaf thread's local share of its interest (what the
 * leafs this server is the hub of announced), not what this server's own hubs announced? Routes
 * and gateways do: nats-server never passes a hub's interest on to routes or gateways (a message
 * from them never goes up to a hub). The leaf thread logs both weights (threads/interest.ts).
 */
export function hearsLocalLeafInterestOnly(viewer: ThreadRoleCode): boolean {
  return viewer === ROUTE || viewer === GATEWAY;
}

/**
 * Do records for a thread of this role carry a message's leaf origin cluster (record.ts
 * FLAG_ORIGIN)? The route thread tells it to route peers (`LMSG <origin> ...`), the leaf thread
 * sends a routed message down no leaf connection of that cluster; client workers and gateways
 * have no use for it.
 */
export function takesLeafOrigin(role: ThreadRoleCode): boolean {
  return role === ROUTE || role === LEAF;
}

/** Does a thread of this role announce interest to server peers (and want waking for it)? */
export function announcesInterest(role: ThreadRoleCode): boolean {
  return role !== WORKER;
}
