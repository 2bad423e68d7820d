/**
 * Leaf: Prometheus metrics with etcd 3.4's names (registry.ts: counters, gauges, histograms
 * and the text format; etcd.ts: the metric set; process.ts: process_*; loop-utilization.ts: the one
 * timer that watches how busy the event loop is; event-loop.ts: Concord's
 * own concord_event_loop_delay_seconds). Any layer may record
 * into it; api/ renders it on /metrics.
 */
export { Registry, Counter, Gauge, Histogram, Family, goFloat, type MetricType } from './registry.js';
export {
  registry, serverMetrics, mvccMetrics, diskMetrics, countView, grpcMethodMetrics, grpcCodeNames,
  bindCollected, bindIdentity, recordHandled, enableHandlingTimeHistogram, type GrpcMethodMetrics, type GrpcType, type MetricName,
} from './etcd.js';
export { registerProcessMetrics, fdLimit } from './process.js';
export { registerEventLoopMetrics } from './event-loop.js';
export { loopTrace, LoopTracer } from './loop-trace.js';
export { watchLoopUtilization, type UtilizationListener } from './loop-utilization.js';

import { registry } from './etcd.js';
import { registerProcessMetrics } from './process.js';
registerProcessMetrics(registry);

/** The Content-Type of the text exposition format, as promhttp sends it. */
export const metricsContentType = 'text/plain; version=0.0.4; charset=utf-8';
