import { runsImage } from '../../api/kinds/function-workload.js';

/**
 * What the autoscaler scales, one interface per kind of replica. A Wasm Function's replicas are warm
 * instances of its module on the request thread (the invoker reserves them with the runtime); a
 * container or VM Function's are processes or VMs (the workload manager starts and stops them). The
 * autoscaler decides the same way for both and applies through these.
 */

/** ScaleTarget is one kind of replica. */
export interface ScaleTarget {
  /** Whether the target serves this Function now (its module loaded, or its workload defined). */
  has(namespace: string, name: string): boolean;
  /**
   * scale sets the replica count; it returns true when the replicas are ready on return (a Wasm
   * Function), false when they become ready later (the gate is opened when they are).
   */
  scale(namespace: string, name: string, replicas: number): boolean;
  /** Replicas running and ready now. */
  observe(namespace: string, name: string): { replicas: number; ready: number } | undefined;
  /** Why no replica can start now (every one crashing), if so. */
  blocked?(namespace: string, name: string): string | undefined;
}

/** The slice of the FunctionInvoker the Wasm target needs. */
export interface WasmReplicas {
  has(namespace: string, name: string): boolean;
  trySetReplicas(namespace: string, name: string, n: number): boolean;
  warmReplicas(namespace: string, name: string): number;
}

/** The slice of the WorkloadManager the workload target needs. */
export interface WorkloadReplicas {
  has(namespace: string, name: string): boolean;
  scale(namespace: string, name: string, replicas: number): void;
  status(namespace: string, name: string): { replicas: number; readyReplicas: number; replicaStatuses: Array<{ state: string; message?: string; revision: string }> } | undefined;
}

/** wasmTarget: replicas are reserved warm instances; a Function with a loaded module is ready at once. */
export function wasmTarget(invoker: WasmReplicas): ScaleTarget {
  const desired = new Map<string, number>();
  return {
    has: (ns, name) => invoker.has(ns, name),
    scale(ns, name, n) {
      desired.set(`${ns}/${name}`, n);
      invoker.trySetReplicas(ns, name, n);
      // A loaded module serves even before its instances are warm: the first runs instantiate.
      return invoker.has(ns, name);
    },
    observe(ns, name) {
      if (!invoker.has(ns, name)) return undefined;
      const n = desired.get(`${ns}/${name}`) ?? 0;
      return { replicas: n, ready: n };
    },
  };
}

/** workloadTarget: replicas are the manager's processes or VMs, ready once their probe passes. */
export function workloadTarget(manager: WorkloadReplicas): ScaleTarget {
  return {
    has: (ns, name) => manager.has(ns, name),
    scale(ns, name, n) {
      manager.scale(ns, name, n);
      return false;
    },
    observe(ns, name) {
      const st = manager.status(ns, name);
      return st && { replicas: st.replicas, ready: st.readyReplicas };
    },
    blocked(ns, name) {
      const st = manager.status(ns, name);
      if (!st || st.readyReplicas > 0 || st.replicaStatuses.length === 0) return undefined;
      const all = st.replicaStatuses.every((r) => r.state === 'CrashLoopBackOff' || r.state === 'NotReady');
      return all ? (st.replicaStatuses[0]!.message ?? 'no replica is ready') : undefined;
    },
  };
}

/**
 * placedWorkloadTarget is the workload target in a cluster: the count the autoscaler decides is the
 * Function's total (status.desiredReplicas), which the scheduler splits over the nodes; each node's
 * workload controller runs its share. So scaling here only records the decision, and what runs is
 * what the nodes report in the Function's merged status.
 */
export function placedWorkloadTarget(functions: (namespace: string, name: string) => { spec?: Record<string, unknown>; status?: Record<string, unknown> } | undefined): ScaleTarget {
  return {
    has: (ns, name) => {
      const f = functions(ns, name);
      return f !== undefined && runsImage(f.spec ?? {});
    },
    scale: () => false,
    observe(ns, name) {
      const st = functions(ns, name)?.status;
      if (!st) return undefined;
      return { replicas: Number(st.replicas ?? 0), ready: Number(st.readyReplicas ?? 0) };
    },
  };
}
