// The stack's security building blocks, in one place so that every new resource gets them the
// same way: private buckets (KMS, TLS only, versioned, server access logs to the log bucket),
// the locked-down server-access-log bucket itself, log groups encrypted with the stage key,
// and Checkov suppressions that always carry their reason (docs/deploy-aws.md lists each).
import {
  ArnFormat,
  type CfnResource,
  Duration,
  aws_iam as iam,
  type aws_kms as kms,
  aws_logs as logs,
  type RemovalPolicy,
  Stack,
  aws_s3 as s3,
} from 'aws-cdk-lib';
import type { Construct, IConstruct } from 'constructs';

/** One Checkov suppression: the check and why it does not fit this resource. */
export interface CheckovSkip {
  id: string;
  comment: string;
}

/**
 * Suppress Checkov checks on one resource (its `Metadata.checkov.skip`). Every skip needs a
 * written reason; the template tests list the expected ones, so a new skip is a reviewed change.
 */
export function checkovSkip(scope: IConstruct, ...skips: CheckovSkip[]): void {
  const cfn = (scope.node.defaultChild ?? scope) as CfnResource;
  for (const s of skips) {
    if (!/^CKV2?_AWS_\d+$/.test(s.id) || s.comment.trim().length < 20) {
      throw new Error(`Checkov skip ${s.id} on ${scope.node.path} needs a check id and a written reason`);
    }
  }
  const existing = (cfn.getMetadata('checkov') as { skip?: CheckovSkip[] } | undefined)?.skip ?? [];
  cfn.addMetadata('checkov', { skip: [...existing, ...skips] });
}

/**
 * Let CloudWatch Logs use the stage key for this stage's log groups only (`/rxbridge/<stage>/…`):
 * the service encrypts log events with it on the groups' behalf.
 */
export function allowCloudWatchLogs(key: kms.Key, logGroupPrefix: string): void {
  const stack = Stack.of(key);
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchLogsForThisStage',
      principals: [new iam.ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
      actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      resources: ['*'],
      conditions: {
        ArnLike: {
          'kms:EncryptionContext:aws:logs:arn': stack.formatArn({
            service: 'logs',
            resource: 'log-group',
            resourceName: `${logGroupPrefix}*`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        },
      },
    }),
  );
}

/** A log group encrypted with the stage key, with bounded retention. */
export function encryptedLogGroup(
  scope: Construct,
  id: string,
  props: { logGroupName: string; key: kms.IKey; retention: logs.RetentionDays; removalPolicy: RemovalPolicy },
): logs.LogGroup {
  return new logs.LogGroup(scope, id, {
    logGroupName: props.logGroupName,
    encryptionKey: props.key,
    retention: props.retention,
    removalPolicy: props.removalPolicy,
  });
}

/**
 * The bucket that receives S3 server access logs. Nothing in the stack is granted access to it;
 * S3's log delivery writes through the bucket policy (only from this account's buckets), public
 * access is blocked, TLS is required, ACLs are off, and in prod nobody can delete a log record
 * (the lifecycle rule expires them).
 */
export function accessLogBucket(
  scope: Construct,
  id: string,
  props: { retention: Duration; removalPolicy: RemovalPolicy; denyDeletes: boolean },
): s3.Bucket {
  const bucket = new s3.Bucket(scope, id, {
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    // S3 server access log delivery supports SSE-S3 only on the target bucket.
    encryption: s3.BucketEncryption.S3_MANAGED,
    versioned: true,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    removalPolicy: props.removalPolicy,
    lifecycleRules: [{ expiration: props.retention, noncurrentVersionExpiration: Duration.days(1) }],
  });
  if (props.denyDeletes) {
    bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'LogRecordsAreNotDeleted',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:DeleteObject', 's3:DeleteObjectVersion'],
        resources: [bucket.arnForObjects('*')],
      }),
    );
  }
  checkovSkip(bucket, {
    id: 'CKV_AWS_18',
    comment:
      'This is the server-access-log bucket: logging it into itself would log every log delivery, and into another bucket would only move the question.',
  });
  return bucket;
}

/**
 * A private bucket: public access blocked, TLS only, SSE-KMS with the stage key (bucket key on),
 * versioned, ACLs off, server access logs to `accessLogs` under `<id>/`. `extra` adds to or
 * overrides these (object lock, lifecycle rules…). Every bucket of the stack is made here, so
 * that each passes the scanner for the same reasons.
 */
export function privateBucket(
  scope: Construct,
  id: string,
  props: { key: kms.IKey; accessLogs: s3.IBucket; removalPolicy: RemovalPolicy },
  extra: Partial<s3.BucketProps> = {},
): s3.Bucket {
  return new s3.Bucket(scope, id, {
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    encryption: s3.BucketEncryption.KMS,
    encryptionKey: props.key,
    bucketKeyEnabled: true,
    versioned: true,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    removalPolicy: props.removalPolicy,
    serverAccessLogsBucket: props.accessLogs,
    serverAccessLogsPrefix: `${id}/`,
    ...extra,
  });
}
