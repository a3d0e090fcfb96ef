// rxbridge on AWS: the same router and use cases as the embedded build, on an HTTP API,
// Lambda (provided.al2023, arm64), DynamoDB (single table), S3 (documents), Cognito (staff
// sign-in) and KMS (patient-data key). Environment-agnostic: `cdk synth` needs no account.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Annotations,
  aws_apigatewayv2 as apigw,
  CfnOutput,
  aws_cloudwatch as cloudwatch,
  aws_cognito as cognito,
  Duration,
  aws_dynamodb as dynamodb,
  aws_events as events,
  aws_apigatewayv2_integrations as integrations,
  aws_kms as kms,
  aws_lambda as lambda,
  aws_logs as logs,
  RemovalPolicy,
  Stack,
  type StackProps,
  aws_s3 as s3,
  aws_sqs as sqs,
  Tags,
  aws_events_targets as targets,
} from 'aws-cdk-lib';
import type { Construct } from 'constructs';

export interface RxbridgeStackProps extends StackProps {
  /** `dev`, a developer's name, or `prod`. Names, retention and protection follow it. */
  stage: string;
  /** Directory holding the Lambda `bootstrap` (from `cargo lambda build`). */
  lambdaAsset?: string;
  /**
   * Where staff and patients reach the service (a custom domain in front of the HTTP API),
   * e.g. `https://rx.example.co.uk`. With it, staff sign in through Cognito's hosted pages
   * (password + MFA) and local passwords are refused; prod requires it.
   */
  publicUrl?: string;
  /** The hosted sign-in pages' domain prefix (globally unique per region). */
  cognitoDomainPrefix?: string;
  /** How often the worker writes a signed audit anchor to the anchor bucket (default 60). */
  anchorIntervalMinutes?: number;
}

/** Staff roles: one Cognito group each (the portal maps the group to the role). */
export const ROLES = ['support', 'pharmacist', 'finance', 'admin'] as const;

export class RxbridgeStack extends Stack {
  constructor(scope: Construct, id: string, props: RxbridgeStackProps) {
    super(scope, id, props);
    const { stage } = props;
    if (!/^[a-z][a-z0-9-]{1,20}$/.test(stage)) {
      throw new Error(
        `stage must be 2-21 lower-case letters, digits or dashes, got ${JSON.stringify(stage)}`,
      );
    }
    const prod = stage === 'prod';
    const publicUrl = props.publicUrl?.replace(/\/+$/, '');
    if (prod && !publicUrl) {
      throw new Error('prod needs -c publicUrl=https://…: staff must sign in through Cognito (MFA)');
    }
    if (publicUrl && !/^https:\/\/[a-z0-9.-]+(:[0-9]+)?$/.test(publicUrl)) {
      throw new Error(`publicUrl must be an https origin, got ${JSON.stringify(publicUrl)}`);
    }
    const retain = prod ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    Tags.of(this).add('app', 'rxbridge');
    Tags.of(this).add('stage', stage);

    // Patient data is sealed with a data key that this key encrypts (envelope encryption).
    const key = new kms.Key(this, 'DataKey', {
      alias: `alias/rxbridge-${stage}`,
      description: `rxbridge ${stage}: patient-data envelope key, table and bucket encryption`,
      enableKeyRotation: true,
      removalPolicy: retain,
    });

    // One table; keys and access patterns in docs/dynamodb.md. Lookups go through GSIs.
    const table = new dynamodb.Table(this, 'Table', {
      tableName: `rxbridge-${stage}`,
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: key,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: prod,
      timeToLiveAttribute: 'expires_at',
      removalPolicy: retain,
    });
    for (const n of [1, 2, 3]) {
      table.addGlobalSecondaryIndex({
        indexName: `gsi${n}`,
        partitionKey: { name: `gsi${n}pk`, type: dynamodb.AttributeType.STRING },
        sortKey: { name: `gsi${n}sk`, type: dynamodb.AttributeType.STRING },
      });
    }

    // Scans of paper originals.
    const documents = new s3.Bucket(this, 'Documents', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: key,
      bucketKeyEnabled: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: retain,
      lifecycleRules: [{ noncurrentVersionExpiration: Duration.days(prod ? 3650 : 30) }],
    });

    // Audit anchors: signed statements of every chain's head, written by the worker. Object
    // Lock in compliance mode: nobody — the worker, an administrator, the root user — can
    // overwrite or delete an anchor before its retention ends, so truncating or rewriting the
    // event log or a register behind an anchor is found by `rxbridge-aws verify --anchor`.
    const anchors = new s3.Bucket(this, 'Anchors', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: key,
      bucketKeyEnabled: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      objectLockEnabled: true,
      // Prod: as long as the CD register must be kept and then some (MDR 2001 reg 23: two
      // years from the last entry); developer stages one day.
      objectLockDefaultRetention: s3.ObjectLockRetention.compliance(Duration.days(prod ? 7 * 365 : 1)),
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Staff sign-in: no self sign-up, MFA required, one group per role.
    const users = new cognito.UserPool(this, 'Staff', {
      userPoolName: `rxbridge-${stage}-staff`,
      selfSignUpEnabled: false,
      signInAliases: { email: true },
      mfa: cognito.Mfa.REQUIRED,
      mfaSecondFactor: { otp: true, sms: false },
      passwordPolicy: {
        minLength: 12,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: false,
        tempPasswordValidity: Duration.days(3),
      },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      deletionProtection: prod,
      removalPolicy: retain,
    });
    const client = users.addClient('Portal', {
      generateSecret: false,
      authFlows: { userSrp: true },
      // The portal's sign-in: authorization code with PKCE at the hosted pages.
      oAuth: publicUrl
        ? {
            flows: { authorizationCodeGrant: true },
            scopes: [cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
            callbackUrls: [`${publicUrl}/staff/login/callback`],
            logoutUrls: [`${publicUrl}/staff/login`],
          }
        : { flows: { authorizationCodeGrant: false, implicitCodeGrant: false } },
      accessTokenValidity: Duration.minutes(30),
      idTokenValidity: Duration.minutes(30),
      refreshTokenValidity: Duration.hours(12),
      preventUserExistenceErrors: true,
    });
    const domain = publicUrl
      ? users.addDomain('SignIn', {
          cognitoDomain: { domainPrefix: props.cognitoDomainPrefix ?? `rxbridge-${stage}` },
        })
      : undefined;
    for (const role of ROLES) {
      new cognito.CfnUserPoolGroup(this, `Group-${role}`, {
        userPoolId: users.userPoolId,
        groupName: role,
        description: `rxbridge ${role}`,
      });
    }

    // The binary: `cargo lambda build --profile dist --arm64` (docs/deploy-aws.md).
    const here = dirname(fileURLToPath(import.meta.url));
    const asset = props.lambdaAsset ?? join(here, '..', 'lambda-placeholder');
    if (!props.lambdaAsset) {
      Annotations.of(this).addWarningV2(
        'rxbridge:placeholder-lambda',
        'No -c lambdaAsset=…: the functions use a placeholder bundle (fine for synth and tests, not for deploy).',
      );
    } else if (!existsSync(join(asset, 'bootstrap'))) {
      throw new Error(`lambdaAsset ${asset} has no bootstrap: build it with cargo lambda first`);
    }
    const environment = {
      RXBRIDGE_STAGE: stage,
      RXBRIDGE_STORE: 'dynamodb',
      RXBRIDGE_TABLE: table.tableName,
      RXBRIDGE_DOCUMENTS_BUCKET: documents.bucketName,
      RXBRIDGE_KMS_KEY_ID: key.keyId,
      RXBRIDGE_COGNITO_USER_POOL_ID: users.userPoolId,
      RXBRIDGE_COGNITO_CLIENT_ID: client.userPoolClientId,
      RXBRIDGE_SECURE_COOKIES: 'true',
      RXBRIDGE_LOG: 'info',
      ...(publicUrl && domain
        ? { RXBRIDGE_PUBLIC_URL: publicUrl, RXBRIDGE_COGNITO_DOMAIN: domain.baseUrl() }
        : {}),
    };
    const fn = (
      name: string,
      role: 'api' | 'worker',
      timeout: Duration,
      extra: Partial<lambda.FunctionProps> = {},
    ) => {
      const logGroup = new logs.LogGroup(this, `${name}Logs`, {
        retention: prod ? logs.RetentionDays.TWO_YEARS : logs.RetentionDays.ONE_MONTH,
        encryptionKey: undefined,
        removalPolicy: retain,
      });
      const f = new lambda.Function(this, name, {
        runtime: lambda.Runtime.PROVIDED_AL2023,
        architecture: lambda.Architecture.ARM_64,
        handler: 'bootstrap',
        code: lambda.Code.fromAsset(asset),
        memorySize: 512,
        timeout,
        logGroup,
        tracing: lambda.Tracing.ACTIVE,
        environment: { ...environment, RXBRIDGE_LAMBDA_ROLE: role },
        ...extra,
      });
      table.grantReadWriteData(f);
      documents.grantReadWrite(f);
      key.grantEncryptDecrypt(f);
      return f;
    };

    const api = fn('Api', 'api', Duration.seconds(29));
    const workerDlq = new sqs.Queue(this, 'WorkerDlq', {
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.KMS_MANAGED,
      enforceSSL: true,
    });
    // The outbox worker, the payment sweep and the fulfilment sweep, once a minute.
    const worker = fn('Worker', 'worker', Duration.minutes(5), {
      deadLetterQueue: workerDlq,
      reservedConcurrentExecutions: 1,
      retryAttempts: 0,
    });
    new events.Rule(this, 'EveryMinute', {
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new targets.LambdaFunction(worker, { retryAttempts: 0 })],
    });
    // The anchor run: its own schedule and input; the worker may only add anchors.
    const anchorMinutes = props.anchorIntervalMinutes ?? 60;
    if (!Number.isInteger(anchorMinutes) || anchorMinutes < 1) {
      throw new Error(
        `anchorIntervalMinutes must be a whole number of minutes, at least 1, got ${anchorMinutes}`,
      );
    }
    worker.addEnvironment('RXBRIDGE_ANCHOR_BUCKET', anchors.bucketName);
    anchors.grantPut(worker);
    new events.Rule(this, 'Anchor', {
      schedule: events.Schedule.rate(Duration.minutes(anchorMinutes)),
      targets: [
        new targets.LambdaFunction(worker, {
          event: events.RuleTargetInput.fromObject({ rxbridge: 'anchor' }),
          retryAttempts: 2,
        }),
      ],
    });

    const http = new apigw.HttpApi(this, 'HttpApi', {
      apiName: `rxbridge-${stage}`,
      defaultIntegration: new integrations.HttpLambdaIntegration('Router', api),
      createDefaultStage: false,
    });
    http.addStage('Main', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: 500, burstLimit: 1000 },
    });

    // Alarms: errors, throttles, 5xx, and anything in the worker's dead-letter queue.
    const alarm = (id: string, metric: cloudwatch.IMetric, threshold: number, what: string) =>
      new cloudwatch.Alarm(this, id, {
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `rxbridge ${stage}: ${what}`,
      });
    for (const [name, f] of [
      ['Api', api],
      ['Worker', worker],
    ] as const) {
      alarm(`${name}Errors`, f.metricErrors({ period: Duration.minutes(5) }), 1, `${name} Lambda errors`);
      alarm(
        `${name}Throttles`,
        f.metricThrottles({ period: Duration.minutes(5) }),
        1,
        `${name} Lambda throttles`,
      );
    }
    alarm(
      'Api5xx',
      new cloudwatch.Metric({
        namespace: 'AWS/ApiGateway',
        metricName: '5xx',
        dimensionsMap: { ApiId: http.apiId },
        statistic: 'Sum',
        period: Duration.minutes(5),
      }),
      1,
      'HTTP API 5xx answers',
    );
    alarm(
      'WorkerDlqDepth',
      workerDlq.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5) }),
      1,
      'worker invocations in the dead-letter queue',
    );
    alarm(
      'TableThrottles',
      table.metricThrottledRequestsForOperations({
        operations: [
          dynamodb.Operation.PUT_ITEM,
          dynamodb.Operation.QUERY,
          dynamodb.Operation.TRANSACT_WRITE_ITEMS,
        ],
        period: Duration.minutes(5),
      }),
      1,
      'DynamoDB throttled requests',
    );

    new CfnOutput(this, 'ApiUrl', { value: http.apiEndpoint });
    new CfnOutput(this, 'UserPoolId', { value: users.userPoolId });
    new CfnOutput(this, 'UserPoolClientId', { value: client.userPoolClientId });
    new CfnOutput(this, 'TableName', { value: table.tableName });
    new CfnOutput(this, 'DocumentsBucket', { value: documents.bucketName });
  }
}
