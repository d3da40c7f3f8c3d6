/**
 * `nimbus deploy --template`: the example SAM project (examples/sam-app: an HTTP API with
 * two routes on a TypeScript function built with esbuild, a function URL, a REST route,
 * a skipped DynamoDB table) deployed and exercised over HTTP, deployed again as an
 * update; templates with unsupported resources and events listed as skipped; broken
 * templates refused with a message that says where.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GetFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import { TestServer, repoRoot } from '../helpers/nimbus.ts';
import { send } from '../triggers/http-client.ts';

const run = promisify(execFile);
const cli = path.join(repoRoot, 'src', 'cli', 'main.ts');
let server: TestServer;
let port: number;
let scratch: string;

before(async () => {
  server = await TestServer.start();
  port = Number(new URL(server.url).port);
  scratch = await mkdtemp(path.join(os.tmpdir(), 'nimbus-sam-'));
});
after(async () => {
  await server.stop();
  await rm(scratch, { recursive: true, force: true });
});

async function nimbus(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args, '--endpoint', server.url], { env: { ...process.env, NIMBUS_ENDPOINT: '' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('examples/sam-app: deployed, its HTTP API, REST API and function URL answer, and a second deploy updates', async () => {
  const first = await nimbus('deploy', '--template', path.join(repoRoot, 'examples', 'sam-app', 'template.yaml'));
  assert.equal(first.code, 0, first.stderr);
  const out = first.stdout;
  assert.match(out, /^Stack sam-app:$/m);
  assert.match(out, /^  created function sam-app-ItemsFunction \(ItemsFunction, built with esbuild\)$/m);
  assert.match(out, /^  created function sam-app-HelloFunction \(HelloFunction\)$/m);
  assert.match(out, /^    GET \/items -> sam-app-ItemsFunction$/m);
  assert.match(out, /^    GET \/items\/\{id\} -> sam-app-ItemsFunction$/m);
  assert.match(out, /^    GET \/hello\/\{name\} -> sam-app-HelloFunction$/m);
  assert.match(out, /^  skipped 1 resource Nimbus does not deploy: ItemsTable \(AWS::DynamoDB::Table\)$/m);
  const httpApi = /HTTP API ServerlessHttpApi \(([a-z0-9]{10})\): (http:\/\/\S+)/.exec(out)!;
  const restApi = /REST API ServerlessRestApi \(([a-z0-9]{10})\): (http:\/\/\S+)/.exec(out)!;
  const url = /function URL: (http:\/\/\S+)/.exec(out)![1]!;
  assert.equal(httpApi[2], `http://${httpApi[1]}.execute-api.us-east-1.localhost:${port}/`);
  assert.equal(restApi[2], `http://${restApi[1]}.execute-api.us-east-1.localhost:${port}/Prod/`);

  const cfg = await server.client.send(new GetFunctionConfigurationCommand({ FunctionName: 'sam-app-HelloFunction' }));
  assert.equal(cfg.Runtime, 'nodejs24.x', 'Globals.Function.Runtime');
  assert.equal(cfg.MemorySize, 256);
  assert.equal(cfg.Timeout, 10);
  assert.deepEqual(cfg.Environment?.Variables, { STAGE: 'local', GREETING: 'Hello from us-east-1' }, 'Globals maps merged, !Sub resolved');

  const { stdout: list } = await run('curl', ['-s', `${httpApi[2]}items`]);
  assert.deepEqual(JSON.parse(list), { items: [{ id: '1', name: 'kettle' }, { id: '2', name: 'teapot' }], table: 'ItemsTable' });
  const { stdout: one } = await run('curl', ['-s', `${httpApi[2]}items/2`]);
  assert.deepEqual(JSON.parse(one), { id: '2', name: 'teapot' });
  const missing = await send({ port, host: `${httpApi[1]}.execute-api.us-east-1.localhost:${port}`, path: '/items/9' });
  assert.equal(missing.status, 404);
  assert.deepEqual(JSON.parse(missing.body.toString()), { message: 'no item 9' });
  const { stdout: hello } = await run('curl', ['-s', `${restApi[2]}hello/sam`]);
  assert.equal(hello, 'Hello from us-east-1, sam!');
  const { stdout: viaUrl } = await run('curl', ['-s', `${url}?name=url`]);
  assert.equal(viaUrl, 'Hello from us-east-1, url!');
  const preflight = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'OPTIONS', url, '-H', 'Origin: http://localhost:5173', '-H', 'Access-Control-Request-Method: GET', '-D', '-']);
  assert.match(preflight.stdout, /access-control-allow-origin: http:\/\/localhost:5173/i);

  const second = await nimbus('deploy', '--template', path.join(repoRoot, 'examples', 'sam-app'), '--json');
  assert.equal(second.code, 0, second.stderr);
  const result = JSON.parse(second.stdout) as { functions: Array<{ action: string; functionUrl?: string }>; apis: Array<{ apiId: string }> };
  assert.deepEqual(result.functions.map((f) => f.action), ['updated', 'updated']);
  assert.equal(result.functions[1]!.functionUrl, url, 'the URL stays');
  assert.deepEqual(result.apis.map((a) => a.apiId).sort(), [httpApi[1], restApi[1]].sort(), 'API ids are stable across deploys');
});

test('unsupported resources and events are listed as skipped; explicit APIs, parameters and conditions are honoured', async () => {
  const dir = path.join(scratch, 'mixed');
  await mkdir(path.join(dir, 'fn'), { recursive: true });
  await writeFile(path.join(dir, 'fn', 'index.mjs'), 'export const handler = async (e) => ({ statusCode: 200, body: `${process.env.MODE}:${e.stageVariables?.v ?? ""}:${e.requestContext.stage}` });\n');
  await writeFile(
    path.join(dir, 'template.yaml'),
    `Transform: AWS::Serverless-2016-10-31
Parameters:
  Mode: { Type: String, Default: plain }
Conditions:
  IsFancy: !Equals [!Ref Mode, fancy]
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v2
      Variables: { v: from-stage }
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Sub "\${AWS::StackName}-fn"
      CodeUri: fn
      Handler: index.handler
      Runtime: nodejs24.x
      Policies: [AWSLambdaBasicExecutionRole]
      Environment:
        Variables:
          MODE: !If [IsFancy, fancy-mode, !Ref Mode]
          QUEUE: !Ref Queue
      Events:
        Get:
          Type: Api
          Properties: { RestApiId: !Ref Api, Path: /x, Method: any }
        Nightly:
          Type: Schedule
          Properties: { Schedule: rate(1 day) }
        Jobs:
          Type: SQS
          Properties: { Queue: !GetAtt Queue.Arn }
  Queue:
    Type: AWS::SQS::Queue
  Bucket:
    Type: AWS::S3::Bucket
`,
  );
  const res = await nimbus('deploy', '--template', dir, '--stack-name', 'mixed', '--parameter-overrides', 'Mode=fancy');
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^  created function mixed-fn \(Fn\)$/m);
  assert.match(res.stdout, /^  skipped 2 resources Nimbus does not deploy: Queue \(AWS::SQS::Queue\), Bucket \(AWS::S3::Bucket\)$/m);
  assert.match(res.stdout, /^  skipped 2 events Nimbus does not wire: Fn\.Events\.Nightly \(Schedule\), Fn\.Events\.Jobs \(SQS\)$/m);
  assert.match(res.stdout, /^  note: Fn: properties not used locally: Policies$/m);
  const apiId = /REST API Api \(([a-z0-9]{10})\)/.exec(res.stdout)![1]!;
  const answer = await send({ port, host: `${apiId}.execute-api.us-east-1.localhost:${port}`, method: 'DELETE', path: '/v2/x' });
  assert.equal(answer.body.toString(), 'fancy-mode:from-stage:v2');
});

test('broken templates are refused with where and why; nothing half-deployed', async () => {
  const cases: Array<[string, string, RegExp]> = [
    ['yaml', 'Resources:\n  Fn:\n    Type: [unclosed\n', /TemplateError: .*template\.yaml/],
    ['no-resources', 'Transform: AWS::Serverless-2016-10-31\n', /has no Resources section/],
    ['getatt-skipped', 'Resources:\n  T: { Type: AWS::DynamoDB::Table }\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: { CodeUri: ., Handler: a.b, Runtime: nodejs24.x, Environment: { Variables: { A: !GetAtt T.Arn } } }\n', /Environment\.Variables\.A.*T\.Arn cannot be resolved: T is an AWS::DynamoDB::Table, which Nimbus does not deploy/],
    ['parameter', 'Parameters:\n  P: { Type: String }\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: { CodeUri: ., Handler: a.b, Runtime: nodejs24.x }\n', /Parameter P has no Default: pass --parameter-overrides P=<value>/],
    ['s3', 'Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: { CodeUri: { Bucket: b, Key: k }, Handler: a.b, Runtime: nodejs24.x }\n', /CodeUri must be a local folder/],
    ['unknown-ref', 'Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: { CodeUri: ., Handler: a.b, Runtime: !Ref Nope }\n', /Runtime \(Ref\): Nope is neither a parameter nor a resource/],
    ['bad-runtime', 'Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: { FunctionName: broken-runtime, CodeUri: ., Handler: a.b, Runtime: cobol1.x }\n', /InvalidParameterValueException|ValidationException/],
  ];
  for (const [name, text, message] of cases) {
    const dir = path.join(scratch, name);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'template.yaml'), text);
    await writeFile(path.join(dir, 'a.js'), 'exports.b = async () => 1;\n');
    const res = await nimbus('deploy', '--template', dir);
    assert.notEqual(res.code, 0, name);
    assert.match(res.stderr, message, `${name}: ${res.stderr}`);
  }
  const both = await nimbus('deploy', scratch, '--template', scratch);
  assert.match(both.stderr, /either <dir> or --template/);
  const health = await server.fetch('/nimbus/v1/health');
  assert.equal(health.status, 200, 'the server is still serving');
});
