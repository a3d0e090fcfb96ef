// What the infrastructure scanner (Checkov, in the test command) and a security review look
// for: access logs, encrypted log groups with retention, failure destinations, bounded
// concurrency, encrypted environments, secrets outside the environment, and every suppression
// with its reason. Offline, like stack.test.ts.
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, test } from 'vitest';
import { ACCESS_LOG_FIELDS, RxbridgeStack, type RxbridgeStackProps } from '../lib/rxbridge-stack.ts';

function synth(stage: string, extra: Partial<RxbridgeStackProps> = {}): Template {
  const app = new App();
  return Template.fromStack(new RxbridgeStack(app, `rxbridge-${stage}`, { stage, ...extra }));
}

const dev = synth('alice');
const prod = synth('prod', { publicUrl: 'https://rx.example.co.uk' });

type Resource = { Type: string; Properties: Record<string, unknown>; Metadata?: Record<string, unknown> };
const resources = (t: Template, type: string): [string, Resource][] =>
  Object.entries(t.findResources(type) as Record<string, Resource>);
const only = (t: Template, type: string, idPrefix: string): [string, Resource] => {
  const found = resources(t, type).filter(([id]) => id.startsWith(idPrefix));
  expect(found, `${type} ${idPrefix}`).toHaveLength(1);
  return found[0];
};
const ref = (id: string) => ({ Ref: id });
const arnOf = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });
const keyId = (t: Template) => only(t, 'AWS::KMS::Key', 'DataKey')[0];
const statementsOf = (doc: unknown) => (doc as { Statement: Record<string, unknown>[] }).Statement;
const bucketPolicy = (t: Template, bucketId: string) => {
  const found = resources(t, 'AWS::S3::BucketPolicy').filter(
    ([, p]) => JSON.stringify(p.Properties.Bucket) === JSON.stringify(ref(bucketId)),
  );
  expect(found, `policy of ${bucketId}`).toHaveLength(1);
  return statementsOf(found[0][1].Properties.PolicyDocument);
};
const ourFunctions = (t: Template) =>
  resources(t, 'AWS::Lambda::Function').filter(([, f]) => f.Properties.Runtime === 'provided.al2023');

describe('logs', () => {
  test.each([
    ['dev', dev, 'alice', 30],
    ['prod', prod, 'prod', 731],
  ] as const)(
    '%s: every log group is encrypted with the stage key, named for the stage, with retention',
    (_, t, stage, days) => {
      const groups = resources(t, 'AWS::Logs::LogGroup');
      expect(groups.map(([, g]) => g.Properties.LogGroupName).sort()).toEqual(
        [`/rxbridge/${stage}/api`, `/rxbridge/${stage}/api-access`, `/rxbridge/${stage}/worker`].sort(),
      );
      for (const [, g] of groups) {
        expect(g.Properties.KmsKeyId).toEqual(arnOf(keyId(t)));
        expect(g.Properties.RetentionInDays).toBe(days);
      }
    },
  );

  test("the key lets CloudWatch Logs encrypt this stage's log groups, and no others", () => {
    const [, key] = only(prod, 'AWS::KMS::Key', 'DataKey');
    const logs = statementsOf(key.Properties.KeyPolicy).find((s) => s.Sid === 'CloudWatchLogsForThisStage');
    expect(logs).toBeDefined();
    expect(JSON.stringify(logs?.Principal)).toContain('.amazonaws.com');
    expect(JSON.stringify(logs?.Principal)).toContain('logs.');
    expect(logs?.Action).toEqual(expect.arrayContaining(['kms:Encrypt*', 'kms:GenerateDataKey*']));
    expect(JSON.stringify(logs?.Condition)).toContain('kms:EncryptionContext:aws:logs:arn');
    expect(JSON.stringify(logs?.Condition)).toContain(':log-group:/rxbridge/prod/*');
  });

  test('the HTTP API logs request id, route, status and latency, never the path, query or body', () => {
    const [accessGroup] = only(prod, 'AWS::Logs::LogGroup', 'ApiAccessLogs');
    const [, stage] = only(prod, 'AWS::ApiGatewayV2::Stage', 'HttpApiMain');
    const settings = stage.Properties.AccessLogSettings as { DestinationArn: unknown; Format: string };
    expect(settings.DestinationArn).toEqual(arnOf(accessGroup));
    const format = JSON.parse(settings.Format) as Record<string, string>;
    expect(format).toEqual(ACCESS_LOG_FIELDS);
    expect(Object.values(format)).toEqual(
      expect.arrayContaining([
        '$context.requestId',
        '$context.routeKey',
        '$context.status',
        '$context.responseLatency',
      ]),
    );
    for (const v of Object.values(format)) {
      expect(v).not.toMatch(/path|querystring|body|sourceIp|userAgent|authorizer/i);
    }
  });

  test('routes by area name the area in the access log, all on the one router integration', () => {
    const routes = resources(dev, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties);
    expect(routes.map((r) => r.RouteKey).sort()).toEqual(
      [
        '$default',
        'ANY /pay/{proxy+}',
        'ANY /sandbox/{proxy+}',
        'ANY /staff/{proxy+}',
        'ANY /v1/{proxy+}',
      ].sort(),
    );
    expect(new Set(routes.map((r) => JSON.stringify(r.Target))).size).toBe(1);
  });
});

describe('buckets', () => {
  const logBucket = (t: Template) => only(t, 'AWS::S3::Bucket', 'AccessLogs');

  test('every bucket but the log bucket writes server access logs to it, under its own prefix', () => {
    for (const t of [dev, prod]) {
      const [logId] = logBucket(t);
      const others = resources(t, 'AWS::S3::Bucket').filter(([id]) => id !== logId);
      expect(others.length).toBeGreaterThan(0);
      for (const [id, b] of others) {
        expect(b.Properties.LoggingConfiguration, id).toEqual({
          DestinationBucketName: ref(logId),
          LogFilePrefix: expect.stringMatching(/^[A-Za-z0-9]+\/$/),
        });
        // And, like the documents, SSE-KMS with the stage key.
        expect(JSON.stringify(b.Properties.BucketEncryption), id).toContain('aws:kms');
      }
    }
    prod.hasResourceProperties('AWS::S3::Bucket', {
      LoggingConfiguration: { DestinationBucketName: ref(logBucket(prod)[0]), LogFilePrefix: 'Documents/' },
    });
  });

  test('the log bucket is locked down: private, TLS only, no ACLs, versioned, expiring', () => {
    const [id, b] = logBucket(prod);
    expect(b.Properties).toMatchObject({
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      LifecycleConfiguration: { Rules: [expect.objectContaining({ ExpirationInDays: 731 })] },
    });
    expect(b.Properties.AccessControl).toBeUndefined();
    prod.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        LifecycleConfiguration: { Rules: [Match.objectLike({ ExpirationInDays: 731 })] },
      }),
    });

    const statements = bucketPolicy(prod, id);
    const delivery = statements.filter((s) =>
      JSON.stringify(s.Principal).includes('logging.s3.amazonaws.com'),
    );
    // One delivery grant per logged bucket, each only from that bucket in this account.
    const logged = resources(prod, 'AWS::S3::Bucket').filter(([, b]) => b.Properties.LoggingConfiguration);
    expect(delivery).toHaveLength(logged.length);
    for (const d of delivery) {
      expect(d).toMatchObject({ Effect: 'Allow', Action: 's3:PutObject' });
      expect(JSON.stringify(d.Condition)).toContain('aws:SourceArn');
      expect(JSON.stringify(d.Condition)).toContain('aws:SourceAccount');
    }
    expect(statements.some((s) => s.Sid === 'LogRecordsAreNotDeleted' && s.Effect === 'Deny')).toBe(true);
    expect(
      statements.some(
        (s) =>
          (s.Condition as object | undefined) && JSON.stringify(s.Condition).includes('aws:SecureTransport'),
      ),
    ).toBe(true);

    // Nothing in the stack is granted access to the logs.
    for (const [, p] of resources(prod, 'AWS::IAM::Policy')) {
      expect(JSON.stringify(p.Properties.PolicyDocument)).not.toContain(id);
    }
  });

  test('a developer stage can still delete its log records (to tear the stage down)', () => {
    const [id] = logBucket(dev);
    expect(bucketPolicy(dev, id).some((s) => s.Sid === 'LogRecordsAreNotDeleted')).toBe(false);
  });
});

describe('functions', () => {
  test('environments are encrypted with the stage key and hold no secret settings', () => {
    for (const t of [dev, prod]) {
      for (const [id, f] of ourFunctions(t)) {
        expect(f.Properties.KmsKeyArn, id).toEqual(arnOf(keyId(t)));
        const vars = (f.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
        for (const name of Object.keys(vars)) {
          expect(name, id).not.toMatch(
            /PASSWORD|SECRET_KEY|WEBHOOK_SECRETS|INBOUND_SECRETS|PATIENT_KEY|USERNAME/,
          );
        }
        const [secretId] = only(t, 'AWS::SecretsManager::Secret', 'Secrets');
        expect(vars.RXBRIDGE_SECRETS_ARN, id).toEqual(ref(secretId));
        // The Parameters and Secrets extension serves the secret at start-up.
        expect(JSON.stringify(f.Properties.Layers), id).toContain('Paramsandsecrets');
      }
    }
  });

  test('the secret settings live in Secrets Manager, encrypted with the stage key, readable by the functions', () => {
    const [secretId, secret] = only(prod, 'AWS::SecretsManager::Secret', 'Secrets');
    expect(secret.Properties).toMatchObject({
      Name: 'rxbridge-prod/settings',
      KmsKeyId: arnOf(keyId(prod)),
      SecretString: '{}',
    });
    prod.hasResource('AWS::SecretsManager::Secret', { DeletionPolicy: 'Retain' });
    const reads = resources(prod, 'AWS::IAM::Policy').filter(([, p]) =>
      statementsOf(p.Properties.PolicyDocument).some(
        (s) =>
          [s.Action].flat().includes('secretsmanager:GetSecretValue') &&
          JSON.stringify(s.Resource) === JSON.stringify(ref(secretId)),
      ),
    );
    expect(reads).toHaveLength(2);
  });

  test('reserved concurrency bounds both functions, per stage and configurable', () => {
    const concurrency = (t: Template) =>
      Object.fromEntries(
        ourFunctions(t).map(([id, f]) => [
          id.replace(/[A-F0-9]{8}$/, ''),
          f.Properties.ReservedConcurrentExecutions,
        ]),
      );
    expect(concurrency(dev)).toEqual({ Api: 10, Worker: 1 });
    expect(concurrency(prod)).toEqual({ Api: 50, Worker: 1 });
    expect(concurrency(synth('bob', { apiReservedConcurrency: 3 }))).toEqual({ Api: 3, Worker: 1 });
    for (const bad of [0, 1.5, 1001, Number.NaN]) {
      expect(() => synth('bob', { apiReservedConcurrency: bad })).toThrow(/apiReservedConcurrency/);
    }
  });

  test("the worker's schedule has a failure destination at both hops, encrypted with the stage key", () => {
    const [queueId, queue] = only(prod, 'AWS::SQS::Queue', 'WorkerDlq');
    expect(queue.Properties.KmsMasterKeyId).toEqual(arnOf(keyId(prod)));
    // A failed run (Lambda's asynchronous invocation) …
    const [, worker] = only(prod, 'AWS::Lambda::Function', 'Worker');
    expect(worker.Properties.DeadLetterConfig).toEqual({ TargetArn: arnOf(queueId) });
    // … and an event EventBridge could not deliver.
    prod.hasResourceProperties('AWS::Events::Rule', {
      Name: 'rxbridge-prod-every-minute',
      Targets: [Match.objectLike({ DeadLetterConfig: { Arn: arnOf(queueId) } })],
    });
    const [, key] = only(prod, 'AWS::KMS::Key', 'DataKey');
    const events = statementsOf(key.Properties.KeyPolicy).find(
      (s) => s.Sid === 'EventBridgeDeadLettersOfTheSchedule',
    );
    expect(events?.Principal).toEqual({ Service: 'events.amazonaws.com' });
    expect(JSON.stringify(events?.Condition)).toContain(':rule/rxbridge-prod-every-minute');
  });
});

describe('scanner suppressions', () => {
  const skips = (t: Template) =>
    Object.entries(t.toJSON().Resources as Record<string, Resource>).flatMap(([id, r]) =>
      ((r.Metadata?.checkov as { skip?: { id: string; comment: string }[] } | undefined)?.skip ?? []).map(
        (s) => ({
          resource: id.replace(/[A-F0-9]{8}$/, ''),
          ...s,
        }),
      ),
    );

  test('exactly the reviewed ones, each with a written reason (docs/deploy-aws.md explains them)', () => {
    for (const t of [dev, prod]) {
      const found = skips(t);
      expect(found.map((s) => `${s.resource} ${s.id}`).sort()).toEqual([
        'AccessLogs CKV_AWS_18',
        'Api CKV_AWS_116',
        'Api CKV_AWS_117',
        'Worker CKV_AWS_117',
      ]);
      for (const s of found) {
        expect(s.comment.length, `${s.resource} ${s.id}`).toBeGreaterThan(60);
      }
    }
  });
});
