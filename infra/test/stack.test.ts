// The security-relevant properties of the synthesised template, for a developer stage and
// for prod. Offline: no AWS account, no Lambda build (the placeholder bundle).
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, test } from 'vitest';
import { ROLES, RxbridgeStack } from '../lib/rxbridge-stack.ts';

function synth(stage: string, publicUrl?: string): Template {
  const app = new App();
  return Template.fromStack(new RxbridgeStack(app, `rxbridge-${stage}`, { stage, publicUrl }));
}

const dev = synth('alice');
const prod = synth('prod', 'https://rx.example.co.uk');

describe('data at rest', () => {
  test('the table is on-demand, KMS-encrypted, with point-in-time recovery and three GSIs', () => {
    dev.hasResourceProperties('AWS::DynamoDB::Table', {
      TableName: 'rxbridge-alice',
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: Match.anyValue() },
      GlobalSecondaryIndexes: [
        Match.objectLike({ IndexName: 'gsi1' }),
        Match.objectLike({ IndexName: 'gsi2' }),
        Match.objectLike({ IndexName: 'gsi3' }),
      ],
    });
  });

  test('prod protects and retains its data; a developer stage can be destroyed', () => {
    prod.hasResourceProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: true });
    prod.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    prod.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain' });
    prod.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Retain' });
    prod.hasResourceProperties('AWS::Cognito::UserPool', { DeletionProtection: 'ACTIVE' });
    dev.hasResourceProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: false });
    dev.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
  });

  test('the bucket blocks public access, enforces TLS, encrypts with KMS and keeps versions', () => {
    dev.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          Match.objectLike({
            ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: Match.anyValue() },
          }),
        ],
      },
      VersioningConfiguration: { Status: 'Enabled' },
    });
    dev.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  test('the key rotates', () => {
    dev.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });
});

describe('staff sign-in', () => {
  test('MFA is required, nobody signs themselves up, passwords are long', () => {
    dev.hasResourceProperties('AWS::Cognito::UserPool', {
      MfaConfiguration: 'ON',
      AdminCreateUserConfig: { AllowAdminCreateUserOnly: true },
      Policies: { PasswordPolicy: Match.objectLike({ MinimumLength: 12 }) },
    });
  });

  test('one group per role', () => {
    for (const role of ROLES) {
      dev.hasResourceProperties('AWS::Cognito::UserPoolGroup', { GroupName: role });
    }
    dev.resourceCountIs('AWS::Cognito::UserPoolGroup', ROLES.length);
  });

  test('prod signs staff in at the hosted pages: code flow, its own callback, the domain passed on', () => {
    prod.hasResourceProperties('AWS::Cognito::UserPoolClient', {
      AllowedOAuthFlows: ['code'],
      CallbackURLs: ['https://rx.example.co.uk/staff/login/callback'],
      AllowedOAuthScopes: Match.arrayWith(['openid', 'email']),
    });
    prod.resourceCountIs('AWS::Cognito::UserPoolDomain', 1);
    prod.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          RXBRIDGE_PUBLIC_URL: 'https://rx.example.co.uk',
          RXBRIDGE_COGNITO_DOMAIN: Match.anyValue(),
        }),
      },
    });
  });

  test('prod without a public https URL is refused', () => {
    expect(() => synth('prod')).toThrow(/publicUrl/);
    expect(() => synth('bob', 'http://rx.example')).toThrow(/https/);
  });

  test('the portal client has no secret and short-lived tokens', () => {
    dev.hasResourceProperties('AWS::Cognito::UserPoolClient', {
      GenerateSecret: false,
      PreventUserExistenceErrors: 'ENABLED',
      AccessTokenValidity: 30,
    });
  });
});

describe('compute', () => {
  test('two functions on provided.al2023, arm64, with bounded log retention', () => {
    const fns = dev.findResources('AWS::Lambda::Function');
    const ours = Object.values(fns).filter((f) => f.Properties.Runtime === 'provided.al2023');
    expect(ours).toHaveLength(2);
    for (const f of ours) {
      expect(f.Properties.Architectures).toEqual(['arm64']);
      expect(f.Properties.Environment.Variables.RXBRIDGE_STORE).toBe('dynamodb');
    }
    dev.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
    prod.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 731 });
  });

  test('the worker runs every minute, one at a time, with a dead-letter queue', () => {
    dev.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 minute)' });
    dev.hasResourceProperties('AWS::Lambda::Function', {
      ReservedConcurrentExecutions: 1,
      DeadLetterConfig: { TargetArn: Match.anyValue() },
    });
  });

  test('anchors go to an Object Lock bucket (compliance mode), hourly, and the worker may only add them', () => {
    dev.hasResourceProperties('AWS::S3::Bucket', {
      ObjectLockEnabled: true,
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 1 } },
      },
      VersioningConfiguration: { Status: 'Enabled' },
    });
    prod.hasResourceProperties('AWS::S3::Bucket', {
      ObjectLockConfiguration: { Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 2555 } } },
    });
    dev.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 hour)',
      Targets: [Match.objectLike({ Input: JSON.stringify({ rxbridge: 'anchor' }) })],
    });
    const buckets = dev.findResources('AWS::S3::Bucket', {
      Properties: { ObjectLockEnabled: true },
    });
    const [anchorBucket] = Object.keys(buckets);
    expect(anchorBucket).toBeDefined();
    const workers = Object.values(dev.findResources('AWS::Lambda::Function')).filter(
      (f) => f.Properties.Environment?.Variables?.RXBRIDGE_LAMBDA_ROLE === 'worker',
    );
    expect(workers).toHaveLength(1);
    expect(workers[0].Properties.Environment.Variables.RXBRIDGE_ANCHOR_BUCKET).toEqual({ Ref: anchorBucket });
    // On the anchor bucket the worker may put objects; never delete them or change the lock.
    const onAnchors = Object.values(dev.findResources('AWS::IAM::Policy'))
      .flatMap((p) => p.Properties.PolicyDocument.Statement)
      .filter((s) => JSON.stringify(s.Resource).includes(anchorBucket));
    expect(onAnchors.length).toBeGreaterThan(0);
    for (const s of onAnchors) {
      for (const a of [s.Action].flat()) {
        expect(a).toMatch(
          /^s3:(PutObject|PutObjectLegalHold|PutObjectRetention|PutObjectTagging|PutObjectVersionTagging|Abort\*)$/,
        );
        expect(a).not.toMatch(/Delete|BypassGovernance|PutBucket/);
      }
    }
  });

  test('the HTTP API throttles its stage', () => {
    dev.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      DefaultRouteSettings: Match.objectLike({ ThrottlingRateLimit: 500, ThrottlingBurstLimit: 1000 }),
    });
  });

  test('alarms on errors, throttles, 5xx and the dead-letter queue', () => {
    const alarms = Object.values(dev.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => a.Properties.AlarmDescription as string,
    );
    for (const what of [
      'Api Lambda errors',
      'Worker Lambda throttles',
      'HTTP API 5xx',
      'dead-letter queue',
      'DynamoDB throttled',
    ]) {
      expect(
        alarms.some((d) => d.includes(what)),
        what,
      ).toBe(true);
    }
  });
});

describe('least privilege', () => {
  test('no IAM statement allows every action or every resource for data access', () => {
    const policies = dev.findResources('AWS::IAM::Policy');
    for (const p of Object.values(policies)) {
      for (const s of p.Properties.PolicyDocument.Statement) {
        const actions = [s.Action].flat();
        expect(actions).not.toContain('*');
        for (const a of actions) {
          expect(a).not.toMatch(/^(dynamodb|s3|kms):\*$/);
        }
        if (actions.some((a: string) => a.startsWith('dynamodb:') || a.startsWith('s3:'))) {
          expect([s.Resource].flat()).not.toContain('*');
        }
      }
    }
  });
});

describe('stages', () => {
  test('every stage is isolated by name', () => {
    const names = (t: Template) =>
      Object.values(t.findResources('AWS::DynamoDB::Table')).map((r) => r.Properties.TableName);
    expect(names(dev)).toEqual(['rxbridge-alice']);
    expect(names(synth('bob'))).toEqual(['rxbridge-bob']);
  });

  test('a bad stage name is refused', () => {
    expect(() => synth('Alice')).toThrow(/stage must be/);
  });
});
