/**
 * Where asynchronous invocation records go. Two destination types exist locally: a
 * Lambda function (the record becomes its event, delivered asynchronously) and an SQS
 * queue ARN, which Nimbus serves with its own built-in queues so that records can be
 * listed and replayed (`nimbus queue`). SNS, EventBridge and S3 need AWS and are refused
 * when configured.
 */
import { InvalidParameterValueException } from '../../errors/platform-errors.ts';

export type Destination =
  | { type: 'lambda'; functionName: string; qualifier?: string; arn: string }
  | { type: 'queue'; queueName: string; arn: string };

const lambdaArn = /^arn:aws[a-zA-Z-]*:lambda:[a-z]{2}(?:-gov)?-[a-z]+-\d:\d{12}:function:([a-zA-Z0-9-_]{1,64})(?::(\$LATEST|[a-zA-Z0-9-_]+))?$/;
const sqsArn = /^arn:aws[a-zA-Z-]*:sqs:[a-z]{2}(?:-gov)?-[a-z]+-\d:\d{12}:([a-zA-Z0-9-_]{1,80})$/;

export function parseDestinationArn(arn: string): Destination {
  const fn = lambdaArn.exec(arn);
  if (fn) return { type: 'lambda', functionName: fn[1]!, qualifier: fn[2], arn };
  const queue = sqsArn.exec(arn);
  if (queue) return { type: 'queue', queueName: queue[1]!, arn };
  if (/^arn:aws[a-zA-Z-]*:(sns|events|s3):/.test(arn)) {
    throw new InvalidParameterValueException(
      `The destination ${arn} needs AWS: Nimbus delivers to Lambda functions and to its built-in queues (SQS queue ARNs, listed with \`nimbus queue\`).`,
    );
  }
  throw new InvalidParameterValueException(`The destination ARN ${arn} is invalid: use a Lambda function ARN or an SQS queue ARN.`);
}

/** Lambda's asynchronous invocation record (destinations). */
export interface InvocationRecord {
  version: '1.0';
  timestamp: string;
  requestContext: {
    requestId: string;
    functionArn: string;
    condition: 'Success' | 'RetriesExhausted' | 'EventAgeExceeded';
    approximateInvokeCount: number;
  };
  requestPayload: unknown;
  responseContext: { statusCode: number; executedVersion: string; functionError?: string };
  responsePayload: unknown;
}

/** Payload bytes as JSON when they parse, else as a string (records embed them). */
export function jsonOrText(bytes: Buffer): unknown {
  const text = bytes.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
