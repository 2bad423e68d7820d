// etcdctl's exit codes (ctlv3/command/error.go) and the error a command ends with.

export const ExitCode = {
  Success: 0,
  Error: 1,
  BadConnection: 2,
  InvalidInput: 3,
  BadFeature: 4,
  Interrupted: 5,
  IO: 6,
  BadArgs: 128,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Ends the command: "Error: <message>" on stderr (unless message is undefined) and the code. */
export class CtlExit extends Error {
  constructor(readonly code: ExitCode, readonly text: string | undefined) {
    super(text ?? `exit ${code}`);
    this.name = 'CtlExit';
  }
}
