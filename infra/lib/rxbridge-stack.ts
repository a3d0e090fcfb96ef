// rxbridge on AWS: the same router and use cases as the embedded build, on an HTTP API,
// Lambda (provided.al2023, arm64), DynamoDB (single table), S3 (documents), Cognito (staff
// sign-in), KMS (patient-data key) and Secrets Manager (secret settings, read at start-up).
// Environment-agnostic: `cdk synth` needs no account. Security building blocks (private buckets,
// encrypted log groups, Checkov suppressions with their reasons) are in `security.ts`.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Annotations,
  aws_apigateway as apigateway,
  aws_apigatewayv2 as apigw,
  CfnOutput,
  aws_cloudwatch as cloudwatch,
  aws_cognito as cognito,
  Duration,
  aws_dynamodb as dynamodb,
  aws_events as events,
  aws_iam as iam,
  aws_apigatewayv2_integrations as integrations,
  aws_kms as kms,
  aws_lambda as lambda,
  aws_logs as logs,
  RemovalPolicy,
  Stack,
  type StackProps,
  aws_s3 as s3,
  aws_secretsmanager as secretsmanager,
  aws_sqs as sqs,
  Tags,
  aws_events_targets as targets,
} from 'aws-cdk-lib';
import { S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY } from 'aws-cdk-lib/cx-api';
import type { Construct } from 'constructs';
import {
  accessLogBucket,
  allowCloudWatchLogs,
  checkovSkip,
  encryptedLogGroup,
  privateBucket,
} from './security.ts';

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
  /**
   * The API function's reserved concurrency (`-c apiReservedConcurrency=N`): the most requests
   * served at once, which bounds the load on DynamoDB, Stripe, SMTP and the warehouse. Default
   * 50 in prod (about 800 requests a second at 60 ms, above the stage's 500/s throttle), 10
   * elsewhere.
   */
  apiReservedConcurrency?: number;
  /** How often the worker writes a signed audit anchor to the anchor bucket (default 60). */
  anchorIntervalMinutes?: number;
}

/** Staff roles: one Cognito group each (the portal maps the group to the role). */
export const ROLES = ['support', 'pharmacist', 'finance', 'admin'] as const;

/**
 * The HTTP API's access-log line (JSON). Request metadata only: no `$context.path` (payment
 * and checkout links carry their token in it), no query string, no body, no source address.
 * `integrationRequestId` is the Lambda invocation's id, to find the function's own log lines.
 */
export const ACCESS_LOG_FIELDS = {
  requestId: '$context.requestId',
  time: '$context.requestTimeEpoch',
  method: '$context.httpMethod',
  route: '$context.routeKey',
  status: '$context.status',
  latencyMs: '$context.responseLatency',
  integrationLatencyMs: '$context.integrationLatency',
  integrationStatus: '$context.integrationStatus',
  integrationRequestId: '$context.integration.requestId',
  integrationError: '$context.integrationErrorMessage',
  responseLength: '$context.responseLength',
  protocol: '$context.protocol',
} as const;

export class RxbridgeStack extends Stack {
  constructor(scope: Construct, id: string, props: RxbridgeStackProps) {
    super(scope, id, props);
    // S3 server access logs are delivered through the log bucket's policy, not an ACL (ACLs
    // stay disabled on every bucket). Set here so that tests and `cdk synth` agree.
    this.node.setContext(S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY, true);
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
    const apiConcurrency = props.apiReservedConcurrency ?? (prod ? 50 : 10);
    if (!Number.isInteger(apiConcurrency) || apiConcurrency < 1 || apiConcurrency > 1000) {
      throw new Error(`apiReservedConcurrency must be a whole number from 1 to 1000, got ${apiConcurrency}`);
    }
    const retain = prod ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const logRetention = prod ? logs.RetentionDays.TWO_YEARS : logs.RetentionDays.ONE_MONTH;
    const logGroupPrefix = `/rxbridge/${stage}/`;
    Tags.of(this).add('app', 'rxbridge');
    Tags.of(this).add('stage', stage);

    // Patient data is sealed with a data key that this key encrypts (envelope encryption).
    const key = new kms.Key(this, 'DataKey', {
      alias: `alias/rxbridge-${stage}`,
      description: `rxbridge ${stage}: patient-data envelope key, table and bucket encryption`,
      enableKeyRotation: true,
      removalPolicy: retain,
    });
    // The stage's log groups (function logs, API access logs) are encrypted with it too.
    allowCloudWatchLogs(key, logGroupPrefix);

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

    // S3 server access logs of every bucket below (who read or wrote which document, when).
    const accessLogs = accessLogBucket(this, 'AccessLogs', {
      retention: Duration.days(prod ? 731 : 30),
      removalPolicy: retain,
      denyDeletes: prod,
    });
    const bucketBase = { key, accessLogs, removalPolicy: retain };

    // Scans of paper originals.
    const documents = privateBucket(this, 'Documents', bucketBase, {
      lifecycleRules: [{ noncurrentVersionExpiration: Duration.days(prod ? 3650 : 30) }],
    });

    // Audit anchors: signed statements of every chain's head, written by the worker. Object
    // Lock in compliance mode: nobody — the worker, an administrator, the root user — can
    // overwrite or delete an anchor before its retention ends, so truncating or rewriting the
    // event log or a register behind an anchor is found by `rxbridge-aws verify --anchor`.
    const anchors = privateBucket(this, 'Anchors', bucketBase, {
      objectLockEnabled: true,
      // Prod: longer than the CD register must be kept (MDR 2001 reg 23: two years from the
      // last entry); developer stages one day.
      objectLockDefaultRetention: s3.ObjectLockRetention.compliance(Duration.days(prod ? 7 * 365 : 1)),
      // Locked objects cannot be deleted: the bucket outlives any stack.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Secret settings (Stripe keys, webhook-signing secrets, SMTP credentials, a moved
    // pharmacy's patient-data key): one JSON object of `RXBRIDGE_*` names, encrypted with the
    // stage key and read by the functions at start-up, never in their environment. Created
    // empty; operators fill it (docs/deploy-aws.md).
    const secrets = new secretsmanager.Secret(this, 'Secrets', {
      secretName: `rxbridge-${stage}/settings`,
      description: `rxbridge ${stage}: secret settings (JSON object of RXBRIDGE_* names), read at start-up`,
      encryptionKey: key,
      secretObjectValue: {},
      removalPolicy: retain,
    });
    // Not rotated by a function: its values are issued by third parties (Stripe, the SMTP
    // provider, the warehouse), rolled there and written here (docs/deploy-aws.md).

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
      RXBRIDGE_SECRETS_ARN: secrets.secretArn,
      ...(publicUrl && domain
        ? { RXBRIDGE_PUBLIC_URL: publicUrl, RXBRIDGE_COGNITO_DOMAIN: domain.baseUrl() }
        : {}),
    };
    // Secrets Manager through the AWS Parameters and Secrets extension (a local HTTP endpoint).
    const paramsAndSecrets = lambda.ParamsAndSecretsLayerVersion.fromVersion(
      lambda.ParamsAndSecretsVersions.V1_0_103,
      { logLevel: lambda.ParamsAndSecretsLogLevel.WARN },
    );
    const fn = (
      name: string,
      role: 'api' | 'worker',
      timeout: Duration,
      extra: Partial<lambda.FunctionProps> & { reservedConcurrentExecutions: number },
    ) => {
      const logGroup = encryptedLogGroup(this, `${name}Logs`, {
        logGroupName: `${logGroupPrefix}${role}`,
        key,
        retention: logRetention,
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
        environmentEncryption: key,
        paramsAndSecrets,
        ...extra,
      });
      table.grantReadWriteData(f);
      documents.grantReadWrite(f);
      key.grantEncryptDecrypt(f);
      secrets.grantRead(f);
      checkovSkip(f, {
        id: 'CKV_AWS_117',
        comment:
          'Reaches only AWS service endpoints (DynamoDB, S3, KMS, Secrets Manager, Cognito) and public HTTPS services (Stripe, SMTP, clinic webhooks, the warehouse): a VPC would add NAT gateways and no isolation; access is by IAM and TLS.',
      });
      return f;
    };

    const api = fn('Api', 'api', Duration.seconds(29), {
      reservedConcurrentExecutions: apiConcurrency,
    });
    checkovSkip(api, {
      id: 'CKV_AWS_116',
      comment:
        'Invoked only synchronously by the HTTP API: a dead-letter queue applies to asynchronous invocations and would never receive anything; a failed request is answered to the clinic, which retries with its idempotency key.',
    });
    // Failed worker invocations, and schedule events EventBridge could not deliver.
    const workerDlq = new sqs.Queue(this, 'WorkerDlq', {
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: key,
      enforceSSL: true,
    });
    // The outbox worker, the payment sweep and the fulfilment sweep, once a minute.
    const worker = fn('Worker', 'worker', Duration.minutes(5), {
      deadLetterQueue: workerDlq,
      reservedConcurrentExecutions: 1,
      retryAttempts: 0,
    });
    const everyMinute = `rxbridge-${stage}-every-minute`;
    new events.Rule(this, 'EveryMinute', {
      ruleName: everyMinute,
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new targets.LambdaFunction(worker, { retryAttempts: 0, deadLetterQueue: workerDlq })],
    });
    // EventBridge writes to the (stage-key encrypted) queue on the rule's behalf. The rule's
    // ARN is built from its name: a reference would make the key depend on the rule.
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'EventBridgeDeadLettersOfTheSchedule',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: {
          ArnEquals: {
            'aws:SourceArn': this.formatArn({
              service: 'events',
              resource: 'rule',
              resourceName: everyMinute,
            }),
          },
        },
      }),
    );
    // The anchor run: its own schedule and input; the worker may only add anchors.
    const anchorMinutes = props.anchorIntervalMinutes ?? 60;
    if (!Number.isInteger(anchorMinutes) || anchorMinutes < 1) {
      throw new Error(
        `anchorIntervalMinutes must be a whole number of minutes, at least 1, got ${anchorMinutes}`,
      );
    }
    worker.addEnvironment('RXBRIDGE_ANCHOR_BUCKET', anchors.bucketName);
    anchors.grantPut(worker);
    const anchorRun = `rxbridge-${stage}-anchor`;
    new events.Rule(this, 'Anchor', {
      ruleName: anchorRun,
      schedule: events.Schedule.rate(Duration.minutes(anchorMinutes)),
      targets: [
        new targets.LambdaFunction(worker, {
          event: events.RuleTargetInput.fromObject({ rxbridge: 'anchor' }),
          retryAttempts: 2,
          deadLetterQueue: workerDlq,
        }),
      ],
    });
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'EventBridgeDeadLettersOfTheAnchorRun',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: {
          ArnEquals: {
            'aws:SourceArn': this.formatArn({
              service: 'events',
              resource: 'rule',
              resourceName: anchorRun,
            }),
          },
        },
      }),
    );

    // One integration (the router); the routes by area only name the area in the access log.
    const router = new integrations.HttpLambdaIntegration('Router', api);
    const http = new apigw.HttpApi(this, 'HttpApi', {
      apiName: `rxbridge-${stage}`,
      defaultIntegration: router,
      createDefaultStage: false,
    });
    for (const area of ['v1', 'staff', 'pay', 'sandbox']) {
      http.addRoutes({ path: `/${area}/{proxy+}`, methods: [apigw.HttpMethod.ANY], integration: router });
    }
    // Access logs: who asked what of which area, the answer and how long it took — never the
    // path itself (payment links carry their token in it), query strings or bodies.
    const accessLog = encryptedLogGroup(this, 'ApiAccessLogs', {
      logGroupName: `${logGroupPrefix}api-access`,
      key,
      retention: logRetention,
      removalPolicy: retain,
    });
    http.addStage('Main', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: 500, burstLimit: 1000 },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(accessLog),
        format: apigateway.AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FIELDS)),
      },
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
    new CfnOutput(this, 'AccessLogsBucket', { value: accessLogs.bucketName });
    new CfnOutput(this, 'SecretsArn', { value: secrets.secretArn });
  }
}
