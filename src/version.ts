/** Leaf module: the etcd versions Concord reports, shared by every layer. */
/**
 * The versions Concord reports to clients. Concord speaks etcd 3.4's API, and tools (etcdctl,
 * Patroni, Kubernetes) gate features on these strings, so it reports the etcd release it is
 * tested against (the installed oracle) rather than its own package version.
 */
export const etcdServerVersion = '3.4.23';
/** etcd's cluster version: major.minor.0 of the lowest member version. */
export const etcdClusterVersion = '3.4.0';
