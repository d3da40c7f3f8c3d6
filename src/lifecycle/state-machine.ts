/**
 * A small explicit state machine: a union of state names, a transition table, and one
 * `transition(to)` that refuses anything the table does not allow. Used for execution
 * environments and the server daemon, so that lifecycles are never a bag of booleans.
 */

export class InvalidStateTransitionError extends Error {
  override readonly name = 'InvalidStateTransition';
  readonly from: string;
  readonly to: string;
  constructor(machine: string, from: string, to: string) {
    super(`State transition from ${from} to ${to} failed for ${machine}.`);
    this.from = from;
    this.to = to;
  }
}

export type TransitionTable<S extends string> = Readonly<Record<S, readonly S[]>>;

export class StateMachine<S extends string> {
  #state: S;
  readonly #table: TransitionTable<S>;
  readonly #machine: string;
  readonly #onChange?: (from: S, to: S) => void;

  constructor(machine: string, initial: S, table: TransitionTable<S>, onChange?: (from: S, to: S) => void) {
    this.#machine = machine;
    this.#state = initial;
    this.#table = table;
    this.#onChange = onChange;
  }

  get state(): S {
    return this.#state;
  }

  can(to: S): boolean {
    return this.#table[this.#state].includes(to);
  }

  /** Moves to `to`, or throws InvalidStateTransitionError and stays where it is. */
  transition(to: S): void {
    const from = this.#state;
    if (!this.#table[from].includes(to)) throw new InvalidStateTransitionError(this.#machine, from, to);
    this.#state = to;
    this.#onChange?.(from, to);
  }
}
