/** Function URL configurations as Nimbus keeps them (camelCase; the wire shape is made in the route). */

export type UrlAuthType = 'NONE' | 'AWS_IAM';
export type UrlInvokeMode = 'BUFFERED' | 'RESPONSE_STREAM';

export interface UrlCors {
  allowCredentials?: boolean;
  allowHeaders?: string[];
  allowMethods?: string[];
  allowOrigins?: string[];
  exposeHeaders?: string[];
  maxAgeSeconds?: number;
}

export interface UrlConfigRecord {
  functionName: string;
  /** Alias the URL points at; absent for the unqualified function ($LATEST). */
  qualifier?: string;
  /** 32 lower-case letters and digits, the first label of the URL's host. */
  urlId: string;
  authType: UrlAuthType;
  cors?: UrlCors;
  invokeMode: UrlInvokeMode;
  /** ISO 8601, as Lambda reports CreationTime. */
  creationTime: string;
  lastModifiedTime: string;
  /**
   * createdAtMs of the function the URL was made for: a function deleted and created
   * again under the same name does not inherit the old function's URL, as on Lambda.
   */
  functionCreatedAtMs: number;
}

/** What the URL service needs from the function domain. */
export interface FunctionLookup {
  /** Throws ResourceNotFoundException when the function (or its alias) does not exist. */
  get(ref: { functionName: string; qualifier?: string }): Promise<{ createdAtMs: number }>;
  arn(functionName: string, qualifier?: string): string;
}
