import type { RolloutAnalysis, RolloutPlan, RolloutStep } from '../../api/kinds/index.js';

import type { Measurement } from './analysis.js';

/**
 * The step machine: given where a rollout stands, the time, and what happened since (a measurement,
 * a promote or abort request), it says where the rollout stands now and what the controller must do.
 * It reads no clock and touches nothing, so every path is tested with scripted inputs.
 */

export type Phase = 'Progressing' | 'Paused' | 'Healthy' | 'Degraded';

/** StepState is the part of a rollout's status the machine owns. */
export interface StepState {
  phase: Phase;
  stepIndex: number;
  /** Percentage of the Route's stable traffic on the canary (0 for blue-green: the preview Route is separate). */
  weight: number;
  /** When the current step began (ms since the epoch). */
  stepStartedAt: number;
  /** Passing measurements since the current step began. */
  passes: number;
  /** Failed measurements in this rollout. */
  failures: number;
  /** Inconclusive measurements in this rollout. */
  inconclusive: number;
  message: string;
}

/** StepInput is what happened since the last turn. */
export interface StepInput {
  now: number;
  measurement?: Measurement;
  /** `step` completes the current step (ends a pause); `full` skips every remaining step. */
  promote?: 'step' | 'full';
  /** A manual abort, with who asked. */
  abort?: string;
}

export type Effect =
  | { type: 'setWeight'; weight: number }
  | { type: 'promote' }
  | { type: 'abort'; reason: string }
  | { type: 'event'; warning: boolean; reason: 'StepCompleted' | 'AnalysisFailed'; message: string };

/** StepOutcome is the machine's answer: the new state, the effects in order, and when to look again. */
export interface StepOutcome {
  state: StepState;
  effects: Effect[];
  /** The time a timed step ends (the controller requeues for it); undefined when only an event can move the rollout. */
  wakeAt?: number;
}

/** startState is the state of a rollout that has just begun. */
export function startState(now: number): StepState {
  return { phase: 'Progressing', stepIndex: 0, weight: 0, stepStartedAt: now, passes: 0, failures: 0, inconclusive: 0, message: 'starting the canary' };
}

/** advance runs one turn of the machine for either strategy. */
export function advance(strategy: RolloutPlan['strategy'], state: StepState, input: StepInput): StepOutcome {
  const s: StepState = { ...state };
  const effects: Effect[] = [];
  if (s.phase === 'Healthy' || s.phase === 'Degraded') return { state: s, effects };
  if (input.abort !== undefined) return aborted(s, effects, `aborted by ${input.abort}`);
  const analysis = strategy.analysis;
  if (input.measurement) {
    const failed = record(s, input.measurement, analysis, effects);
    if (failed) return aborted(s, effects, failed);
  }
  if (input.promote === 'full') return promoting(s, effects, 'promoted in full by request');
  return strategy.kind === 'canary' ? canarySteps(strategy.steps, s, input, effects) : preview(strategy.autoPromotionMs, analysis, s, input, effects);
}

/** record counts a measurement; it returns the abort reason once failures exceed the limit. */
function record(s: StepState, m: Measurement, analysis: RolloutAnalysis | undefined, effects: Effect[]): string | undefined {
  if (m.verdict === 'pass') s.passes++;
  else if (m.verdict === 'inconclusive') s.inconclusive++;
  else {
    s.failures++;
    const limit = analysis?.failureLimit ?? 0;
    effects.push({ type: 'event', warning: true, reason: 'AnalysisFailed', message: `analysis failed (${s.failures} of at most ${limit} tolerated): ${m.reason ?? 'a metric missed its limit'}` });
    // Argo's semantics: the limit is how many failures are tolerated, so abort on the one after it.
    if (s.failures > limit) return `analysis failed ${s.failures} time${s.failures > 1 ? 's' : ''} (limit ${limit}): ${m.reason ?? 'a metric missed its limit'}`;
  }
  return undefined;
}

function canarySteps(steps: RolloutStep[], s: StepState, input: StepInput, effects: Effect[]): StepOutcome {
  let promoteStep = input.promote === 'step';
  const startWeight = s.weight;
  let wakeAt: number | undefined;
  s.phase = 'Progressing';
  while (s.stepIndex < steps.length) {
    const step = steps[s.stepIndex]!;
    let done = false;
    if (step.kind === 'setWeight') {
      s.weight = step.weight;
      done = true;
    } else if (promoteStep) {
      // A promote request completes whatever step is waiting: a pause of either kind or an analysis.
      promoteStep = false;
      done = true;
    } else if (step.kind === 'pause') {
      if (step.durationMs === undefined) {
        s.phase = 'Paused';
        s.message = `paused at step ${s.stepIndex + 1} of ${steps.length} with ${s.weight}% on the canary: run skiff rollout promote to continue`;
      } else if (input.now >= s.stepStartedAt + step.durationMs) {
        done = true;
      } else {
        wakeAt = s.stepStartedAt + step.durationMs;
        s.message = `step ${s.stepIndex + 1} of ${steps.length}: pausing ${Math.ceil((wakeAt - input.now) / 1000)}s more with ${s.weight}% on the canary`;
      }
    } else if (s.passes >= step.count) {
      done = true;
    } else {
      s.message = `step ${s.stepIndex + 1} of ${steps.length}: analysis passed ${s.passes} of ${step.count} times with ${s.weight}% on the canary`;
    }
    if (!done) break;
    effects.push({ type: 'event', warning: false, reason: 'StepCompleted', message: `step ${s.stepIndex + 1} of ${steps.length} completed (${describeStep(step)}); the canary has ${s.weight}% of the traffic` });
    s.stepIndex++;
    s.stepStartedAt = input.now;
    s.passes = 0;
  }
  // Steps that change the weight back to back are one Route write: the gateway sees the last.
  if (s.weight !== startWeight) effects.unshift({ type: 'setWeight', weight: s.weight });
  if (s.stepIndex >= steps.length) return promoting(s, effects, `all ${steps.length} steps completed`);
  return { state: s, effects, wakeAt };
}

function preview(autoPromotionMs: number | undefined, analysis: RolloutAnalysis | undefined, s: StepState, input: StepInput, effects: Effect[]): StepOutcome {
  if (input.promote) return promoting(s, effects, 'promoted by request');
  if (autoPromotionMs === undefined) {
    s.phase = 'Paused';
    s.message = 'the preview Route serves the new version: run skiff rollout promote to switch';
    return { state: s, effects };
  }
  s.phase = 'Progressing';
  const due = s.stepStartedAt + autoPromotionMs;
  const judged = !analysis || s.passes > 0;
  if (input.now >= due && judged) return promoting(s, effects, `promoted automatically after ${autoPromotionMs / 1000}s of preview`);
  s.message = input.now < due ? `previewing; promoting automatically in ${Math.ceil((due - input.now) / 1000)}s` : 'previewing; promoting once the analysis has passed';
  return { state: s, effects, wakeAt: input.now < due ? due : undefined };
}

function promoting(s: StepState, effects: Effect[], why: string): StepOutcome {
  s.phase = 'Progressing';
  s.message = `promoting: ${why}`;
  effects.push({ type: 'promote' });
  return { state: s, effects };
}

function aborted(s: StepState, effects: Effect[], reason: string): StepOutcome {
  s.phase = 'Degraded';
  s.weight = 0;
  s.message = `aborted: ${reason}`;
  effects.push({ type: 'abort', reason });
  return { state: s, effects };
}

function describeStep(step: RolloutStep): string {
  if (step.kind === 'setWeight') return `setWeight ${step.weight}`;
  if (step.kind === 'pause') return step.durationMs === undefined ? 'pause until promoted' : `pause ${step.durationMs / 1000}s`;
  return `analysis passed ${step.count} time${step.count > 1 ? 's' : ''}`;
}
