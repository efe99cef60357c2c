export { CONTENT_SECURITY_POLICY, StaticAssets } from './assets.js';
export { ChangeFeed } from './changes.js';
export { Dashboard, DEFAULT_ASSET_DIR, type DashboardOptions, parseInterval, STREAM_INTERVAL_MS } from './dashboard.js';
export { type DecisionEvent, DecisionRing, type DecisionSource, type RecentDecision } from './decisions.js';
export { type ReplicaPoint, type ReplicaStat, SampleRing, type SampleRingOptions, type SeriesHistory, type SeriesKind, type Summary, type Tick } from './samples.js';
export { LiveStream, type LiveStreamOptions } from './stream.js';
