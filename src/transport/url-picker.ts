/** etcd's urlPicker: keeps using one of a peer's URLs until it fails, then moves on. */
export class UrlPicker {
  private urls: string[];
  private picked = 0;

  constructor(urls: readonly string[]) {
    if (urls.length === 0) throw new Error('url picker: a peer needs at least one URL');
    this.urls = [...urls];
  }

  pick(): string {
    return this.urls[this.picked]!;
  }

  update(urls: readonly string[]): void {
    if (urls.length === 0) throw new Error('url picker: a peer needs at least one URL');
    this.urls = [...urls];
    this.picked = 0;
  }

  /** u failed: the next pick takes the next URL (unless another failure moved on already). */
  unreachable(u: string): void {
    if (this.urls[this.picked] === u) this.picked = (this.picked + 1) % this.urls.length;
  }
}
