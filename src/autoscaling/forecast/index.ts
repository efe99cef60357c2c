// Predictive pre-warming: a Function's bounded request history, the Holt-Winters forecaster over
// it, and the Predictor the autoscaler asks.
export {
  DEFAULT_BUCKET_MS,
  DEFAULT_CAPACITY,
  HistoryError,
  type HistorySeries,
  MAX_BUCKET_COUNT,
  RequestHistory,
  type RequestHistoryOptions,
} from './history.js';
export {
  fitHoltWinters,
  HoltWintersError,
  type HoltWintersKind,
  HoltWintersModel,
  type HoltWintersOptions,
  type HoltWintersParams,
} from './holt-winters.js';
export { type Forecast, Predictor, PredictorError, type PredictorOptions } from './predictor.js';
export { IdleHistogram, type IdleWindow } from './idle-times.js';
