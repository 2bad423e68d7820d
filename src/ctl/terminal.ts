// What concordctl does only for people at a terminal (colors; the progress bar is log/progress.ts).
/** Colors are for people: a terminal, and NO_COLOR (https://no-color.org) unset or empty. */
export function colorWanted(isTerminal: boolean | undefined, env: NodeJS.ProcessEnv): boolean {
  return isTerminal === true && (env.NO_COLOR ?? '') === '';
}
