import { decide, type PodSecurityInput } from '../decision.js';
import type { GatekeeperClient } from '../gatekeeper/client.js';
import { reviewFromRequest } from '../gatekeeper/review.js';
import { type LevelVersion,namespacePolicy } from '../pss/evaluate.js';

/** Answer is the HTTP status and JSON body to send back for one AdmissionReview. */
export interface Answer {
  status: number;
  body: string;
}

const REVIEW_VERSIONS = new Set(['admission.k8s.io/v1', 'admission.k8s.io/v1beta1']);

/** reviewResponse builds the AdmissionReview kube-apiserver expects back, echoing the request's apiVersion and uid. */
function reviewResponse(apiVersion: string, uid: string, body: { allowed: boolean; status?: { code: number; message: string; reason?: string }; warnings?: string[] }): Answer {
  return { status: 200, body: JSON.stringify({ apiVersion, kind: 'AdmissionReview', response: { uid, ...body } }) };
}

/**
 * answerReview decides one AdmissionReview request body. Like controller-runtime, a request it
 * cannot read (bad JSON, no `request`, no object) is answered HTTP 200 with `allowed: false` and
 * status code 400, so kube-apiserver applies that verdict instead of its failurePolicy. Namespaces
 * come from the client's inventory (for namespaceSelector and Pod Security labels) unless a fixed
 * Pod Security level is given.
 */
export function answerReview(client: GatekeeperClient, body: Buffer | string, pssFixed?: LevelVersion): Answer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (e) {
    return reviewResponse('admission.k8s.io/v1', '', { allowed: false, status: { code: 400, reason: 'BadRequest', message: `cannot decode the AdmissionReview: ${(e as Error).message}` } });
  }
  const review = parsed as { apiVersion?: string; kind?: string; request?: { uid?: string } };
  const apiVersion = typeof review?.apiVersion === 'string' && REVIEW_VERSIONS.has(review.apiVersion) ? review.apiVersion : 'admission.k8s.io/v1';
  const uid = typeof review?.request?.uid === 'string' ? review.request.uid : '';
  if (!review || typeof review !== 'object' || review.kind !== 'AdmissionReview')
    return reviewResponse(apiVersion, uid, { allowed: false, status: { code: 400, reason: 'BadRequest', message: 'expected kind AdmissionReview (admission.k8s.io/v1)' } });
  let decision;
  try {
    const r = reviewFromRequest(review.request);
    const nsObj = r.namespace ? client.inventory.namespace(r.namespace) : undefined;
    const pss: PodSecurityInput = pssFixed ? { fixed: pssFixed } : { namespace: namespacePolicy(nsObj?.metadata?.labels) };
    decision = decide(client, r, { namespaceObject: nsObj }, pss);
  } catch (e) {
    return reviewResponse(apiVersion, uid, { allowed: false, status: { code: 400, reason: 'BadRequest', message: (e as Error).message } });
  }
  const warnings = decision.warnings.length ? { warnings: decision.warnings } : {};
  if (decision.allowed) return reviewResponse(apiVersion, uid, { allowed: true, ...warnings });
  return reviewResponse(apiVersion, uid, { allowed: false, status: { code: 403, reason: 'Forbidden', message: decision.denials.map((d) => d.message).join('\n') }, ...warnings });
}
