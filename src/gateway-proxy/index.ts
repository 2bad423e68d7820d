// etcd's `etcd gateway`: the L4 TCP proxy with endpoint failover (tcp-proxy.ts). The command
// line (`concord gateway start`) lives in cli/concord-gateway.ts.
export { TcpProxy, type TcpProxyOptions, type ProxyEndpoint } from './tcp-proxy.js';
