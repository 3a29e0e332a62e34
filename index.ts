// The stack program: one bottle, chosen by stack config (claude-bottle:manifest,
// claude-bottle:agent), or the embedded default bottle when nothing is set.
import { bottleProgram } from "./components/program.ts";

export default () => bottleProgram();
