/** rolloutSchema is `spec.rollout` of Policy and PolicyBundle: how much a new version may change before it goes live. */
export function rolloutSchema(what: string): Record<string, unknown> {
  return {
    type: 'object',
    additionalProperties: false,
    description: `How a new ${what} goes live. Before it does, the recent decisions in the decision log are replayed against it (status.replay).`,
    properties: {
      maxChangedDecisions: { type: 'integer', minimum: 0, description: `Hold a new ${what} back, keeping the previous one live, when more replayed decisions than this would change.` },
    },
  };
}

/** replayStatusSchema documents `status.replay`. */
export const replayStatusSchema: Record<string, unknown> = {
  type: 'object',
  description: 'What replaying the recent decision log against the newest version found: evaluated, changed, notReplayable (masked inputs), since, examples (decision id, query, old and new result), truncated.',
  'x-kubernetes-preserve-unknown-fields': true,
};
