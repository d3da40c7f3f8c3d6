/**
 * Watches the source folders of functions under development and reloads a function
 * when a file in its folder changes (fs.watch, recursive: inotify on Linux, FSEvents on
 * macOS). A change marks the function stale at once (invokes wait) and is settled for 100 ms, so an editor's burst of
 * writes makes one reload. Version-control folders are ignored.
 */
import { watch, type FSWatcher } from 'node:fs';
import type { DevFunction } from './dev-code.ts';

const settleMs = 100;
const ignored = /(^|[\\/])\.(git|hg|svn)([\\/]|$)/;

export class SourceWatcher {
  readonly #watchers: FSWatcher[] = [];
  readonly #timers = new Map<DevFunction, NodeJS.Timeout>();

  constructor(functions: DevFunction[], onError: (err: Error) => void) {
    const byDir = new Map<string, DevFunction[]>();
    for (const fn of functions) byDir.set(fn.plan.codeDir, [...(byDir.get(fn.plan.codeDir) ?? []), fn]);
    for (const [dir, fns] of byDir) {
      const watcher = watch(dir, { recursive: true }, (_event, filename) => {
        if (filename && ignored.test(filename)) return;
        for (const fn of fns) this.#schedule(fn);
      });
      watcher.on('error', onError);
      this.#watchers.push(watcher);
    }
  }

  #schedule(fn: DevFunction): void {
    fn.beginChange();
    clearTimeout(this.#timers.get(fn));
    this.#timers.set(
      fn,
      setTimeout(() => {
        this.#timers.delete(fn);
        void fn.reload();
      }, settleMs),
    );
  }

  close(): void {
    for (const w of this.#watchers) w.close();
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
  }
}
