/** SAM templates in process: CloudFormation short tags, intrinsic functions, Globals, implicit APIs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTemplate, TemplateError } from '../../src/sam/template.ts';
import { planTemplate, defaultFunctionName } from '../../src/sam/plan.ts';

const options = { templateFile: '/project/template.yaml', stackName: 'app', region: 'eu-west-1', accountId: '123456789012', parameterOverrides: {} };

test('short tags become the long forms', () => {
  const t = parseTemplate(
    `Resources:
  X:
    Type: T
    Properties:
      a: !Ref P
      b: !Sub "\${AWS::Region}-\${P}"
      c: !Sub ["\${A}", { A: !Ref P }]
      d: !GetAtt Fn.Arn
      e: !Join [",", [!Ref P, x]]
      f: !If [C, 1, 2]
      g: !Select [0, !Split [",", "a,b"]]
`,
    't.yaml',
  );
  assert.deepEqual(t.Resources.X!.Properties, {
    a: { Ref: 'P' },
    b: { 'Fn::Sub': '${AWS::Region}-${P}' },
    c: { 'Fn::Sub': ['${A}', { A: { Ref: 'P' } }] },
    d: { 'Fn::GetAtt': ['Fn', 'Arn'] },
    e: { 'Fn::Join': [',', [{ Ref: 'P' }, 'x']] },
    f: { 'Fn::If': ['C', 1, 2] },
    g: { 'Fn::Select': [0, { 'Fn::Split': [',', 'a,b'] }] },
  });
  assert.throws(() => parseTemplate('Resources: [', 't.yaml'), TemplateError);
  assert.throws(() => parseTemplate('Resources:\n  X: {}\n', 't.yaml'), /Resources.X has no Type/);
  assert.throws(() => parseTemplate('a: 1\na: 2\nResources: {}\n', 't.yaml'), TemplateError, 'duplicate keys are an error');
});

test('Globals: scalars overridden, maps merged, lists added; implicit APIs; intrinsics resolved', () => {
  const t = parseTemplate(
    `Parameters:
  Env: { Type: String, Default: dev }
Globals:
  Function:
    Runtime: nodejs22.x
    Timeout: 5
    Layers: [arn:aws:lambda:eu-west-1:123456789012:layer:base:1]
    Environment: { Variables: { A: global, B: global } }
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Timeout: 9
      Layers: [!Sub "arn:aws:lambda:\${AWS::Region}:\${AWS::AccountId}:layer:extra:2"]
      Environment: { Variables: { B: !Ref Env, SELF: !GetAtt Fn.Arn, NAME: !Ref Fn } }
      Events:
        A: { Type: Api, Properties: { Path: /a, Method: get } }
        B: { Type: HttpApi }
        C: { Type: HttpApi, Properties: { Path: "/c/{id}", Method: post, PayloadFormatVersion: "1.0" } }
`,
    't.yaml',
  );
  const plan = planTemplate(t, options);
  const fn = plan.functions[0]!;
  assert.equal(fn.functionName, 'app-Fn');
  assert.equal(fn.codeDir, '/project/src');
  assert.equal(fn.runtime, 'nodejs22.x');
  assert.equal(fn.timeoutSeconds, 9);
  assert.deepEqual(fn.layers, ['arn:aws:lambda:eu-west-1:123456789012:layer:base:1', 'arn:aws:lambda:eu-west-1:123456789012:layer:extra:2']);
  assert.deepEqual(fn.environment, { A: 'global', B: 'dev', SELF: 'arn:aws:lambda:eu-west-1:123456789012:function:app-Fn', NAME: 'app-Fn' });
  assert.deepEqual(
    plan.apis.map((a) => [a.logicalId, a.protocol, a.stageName, a.routes.map((r) => `${r.routeKey} ${r.payloadFormatVersion}`)]),
    [
      ['ServerlessRestApi', 'REST', 'Prod', ['GET /a 1.0']],
      ['ServerlessHttpApi', 'HTTP', '$default', ['$default 2.0', 'POST /c/{id} 1.0']],
    ],
  );
  assert.match(plan.apis[0]!.apiId, /^[a-z0-9]{10}$/);
  assert.equal(planTemplate(t, options).apis[0]!.apiId, plan.apis[0]!.apiId, 'stable ids');
  assert.equal(planTemplate(t, { ...options, parameterOverrides: { Env: 'prod' } }).functions[0]!.environment.B, 'prod');
  assert.throws(() => planTemplate(t, { ...options, parameterOverrides: { Nope: 'x' } }), /Nope is not a parameter/);
});

test('long names are shortened within 64 characters, stably', () => {
  const name = defaultFunctionName('a-very-long-stack-name-for-testing', 'AnEvenLongerLogicalIdForTheFunction');
  assert.ok(name.length <= 64);
  assert.equal(name, defaultFunctionName('a-very-long-stack-name-for-testing', 'AnEvenLongerLogicalIdForTheFunction'));
});
