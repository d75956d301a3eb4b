import { errorMessage } from "./api";

/**
 * Something a screen does when asked (load a list, start a backup, save a file), with
 * what the screen shows about it: whether it is running, and why it last failed. A
 * failure never escapes to the caller; it becomes `error`, in the words the command
 * gave (see `errorMessage`), and running it again clears it.
 */
export class Action<Args extends unknown[] = [], Result = void> {
  running = $state(false);
  error = $state<string | null>(null);
  readonly #work: (...args: Args) => Promise<Result>;

  constructor(work: (...args: Args) => Promise<Result>) {
    this.#work = work;
  }

  /** Runs the work: its result, or `undefined` when it failed (then see `error`). */
  run = async (...args: Args): Promise<Result | undefined> => {
    this.running = true;
    this.error = null;
    try {
      return await this.#work(...args);
    } catch (e) {
      this.error = errorMessage(e);
      return undefined;
    } finally {
      this.running = false;
    }
  };

  /** Shows `message` as this action's failure without running it (a form's own check). */
  fail(message: string): void {
    this.error = message;
  }
}
