// A ticking "now" for relative times and time-remaining estimates.

class Clock {
  now = $state(Date.now());
  #timer: ReturnType<typeof setInterval> | null = null;

  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => {
      this.now = Date.now();
    }, 1000);
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}

export const clock = new Clock();
