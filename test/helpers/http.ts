/** An HTTP answer: its status, headers and text, the text as JSON (undefined when it is not JSON), and how long it took. */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
  /** Wall time of the request, in ms. */
  ms: number;
}

export interface FetchJsonOptions {
  method?: string;
  /** Sent as JSON (with a JSON content type unless `headers` names one). */
  body?: unknown;
  /** Sent as given, when there is no `body`. */
  raw?: string | ReadableStream<Uint8Array>;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** One request with a deadline; the answer is read whole, and parsed as JSON when it is. */
export async function fetchJson(url: string, options: FetchJsonOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = {...options.headers};
  let body: string | ReadableStream<Uint8Array> | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    if (!Object.keys(headers).some((name) => name.toLowerCase() === 'content-type'))
      headers['content-type'] = 'application/json';
  }
  const init: RequestInit & {duplex?: 'half'} = {
    method: options.method ?? 'GET',
    headers,
    body,
    signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
  };
  // A streamed body must say it is sent while the answer may already come.
  if (body instanceof ReadableStream) init.duplex = 'half';
  const started = performance.now();
  const response = await fetch(url, init);
  const text = await response.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return {status: response.status, headers: response.headers, text, json, ms: performance.now() - started};
}
