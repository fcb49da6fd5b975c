// The ES module entry: the same objects as the CommonJS entry (one library, one pool).
import cjs from './index.js';

export const { Session, MmError, setLogger, liveSessions, loadedModels, version, versionNumber, constants, HEADER_VERSION, library } = cjs;
export default cjs;
