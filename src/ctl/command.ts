// A concordctl command: its name, its own flags, and either subcommands or a run function.
import type { FlagSpec } from './flags.js';
import type { Ctx } from './context.js';

export interface Command {
  name: string;
  flags?: FlagSpec[];
  /** Flags its subcommands inherit (cobra's persistent flags, e.g. endpoint --cluster). */
  persistentFlags?: FlagSpec[];
  sub?: Command[];
  run?: (ctx: Ctx) => Promise<void>;
}

export const boolFlag = (name: string, short?: string): FlagSpec => ({ name, short, kind: 'bool', default: false });
export const strFlag = (name: string, def = '', short?: string): FlagSpec => ({ name, short, kind: 'string', default: def });
export const intFlag = (name: string, def = 0): FlagSpec => ({ name, kind: 'int', default: def });
