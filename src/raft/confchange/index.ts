/** raft/confchange: validated membership changes (simple and joint consensus). */
export { Changer, ConfChangeError } from './changer.js';
export type { ChangeResult } from './changer.js';
export { restoreConfState } from './restore.js';
