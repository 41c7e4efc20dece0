/**
 * Escalation of an emitter outage. Calls never block delivery: they queue the notification and
 * return; sending (and retrying the sending) happens in the background.
 */
export interface Notifier {
  /** An outage began: `error` is the last emit failure. */
  trigger(error: Error): void;
  /** The outage is over. */
  resolve(): void;
  /** Stops background work; pending notifications are given up to `deadlineMs` to go out. */
  close(deadlineMs?: number): Promise<void>;
}

/** Used when no notify configuration is set: the escalation shows up in the log only. */
export class LogOnlyNotifier implements Notifier {
  constructor(private readonly log: (level: 'error' | 'info', msg: string, error?: Error) => void) {}

  trigger(error: Error): void {
    this.log('error', 'emitter outage: escalation triggered (no AGGREGATOR_NOTIFY_CONFIGURATION set)', error);
  }

  resolve(): void {
    this.log('info', 'emitter outage over: escalation resolved');
  }

  async close(): Promise<void> {}
}
