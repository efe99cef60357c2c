/**
 * The security area holds the operator's grants that every other area consults before it touches the
 * host on a resource's behalf: which host directories may be read or mounted, which network targets
 * may be reached, and how much one Function may ask for. It depends on nothing but util.
 */
export { HostDirs, HostPathError, within } from './host-dirs.js';
export { UpstreamGuard, UpstreamRefusedError, type ListenAddress } from './upstream-guard.js';
export { DEFAULT_FUNCTION_MAXIMA, parseFunctionMaxima, type FunctionMaxima } from './function-maxima.js';
