// The delivery pipeline's access to AWS: GitHub Actions federated by OIDC (no long-lived keys)
// and, per GitHub environment (`preview` for branch stages, `staging`, `prod`), three IAM pieces:
//   - the deploy role the workflow assumes, trusted only for this repository's jobs that run in
//     that environment, allowed to drive that environment's CloudFormation stacks only;
//   - the CloudFormation execution role it passes to those stacks (and only to those), allowed
//     to create the stage's resources, named or tagged for that environment;
//   - the permissions boundary every role the stage's stack creates must carry, so a template
//     cannot grant its functions more than that environment's resources.
// Environment-agnostic like the application stack; docs/delivery.md sets it up in an account.
import {
  ArnFormat,
  CfnOutput,
  Duration,
  aws_iam as iam,
  RemovalPolicy,
  Stack,
  type StackProps,
  Tags,
} from 'aws-cdk-lib';
import type { Construct } from 'constructs';

/** The GitHub environments that deploy, each to its own stages. */
export const ENVIRONMENTS = ['preview', 'staging', 'prod'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

/** Stage names no branch may take: the shared environments and this stack. */
export const RESERVED_STAGES = ['prod', 'staging', 'delivery'] as const;

export const GITHUB_ISSUER = 'token.actions.githubusercontent.com';

export interface DeliveryStackProps extends StackProps {
  /** `owner/name` of the GitHub repository whose workflows deploy. */
  githubRepo: string;
  /**
   * An existing GitHub OIDC provider's ARN (an account holds one per issuer); without it the
   * stack creates the provider.
   */
  oidcProviderArn?: string;
  /** The CDK bootstrap qualifier (default `hnb659fds`, as `cdk bootstrap` creates it). */
  bootstrapQualifier?: string;
}

/**
 * Names of one environment's IAM pieces (the workflows' variables name the same). They are
 * under `rxbridge-delivery-`, outside every stage's `rxbridge-<stage>-` names, so that no
 * execution role can change its own role, a deploy role or a boundary.
 */
export function roleNames(env: Environment) {
  return {
    deploy: `rxbridge-delivery-${env}-github-deploy`,
    execution: `rxbridge-delivery-${env}-cfn-exec`,
    boundary: `rxbridge-delivery-${env}-boundary`,
  };
}

/**
 * The stages an environment deploys: `staging` and `prod` one each; `preview` any stage but the
 * reserved ones. `allow` are stage-name patterns, `deny` the stages carved out of them.
 */
export function stagesOf(env: Environment): { allow: string[]; deny: string[] } {
  return env === 'preview' ? { allow: ['*'], deny: [...RESERVED_STAGES] } : { allow: [env], deny: [] };
}

/**
 * What the pipeline adds to a stage's stack: every IAM role in it carries the environment's
 * permissions boundary (the execution role creates no role without it).
 */
export function applyPermissionsBoundary(stack: Stack, boundaryName: string): void {
  iam.PermissionsBoundary.of(stack).apply(
    iam.ManagedPolicy.fromManagedPolicyName(stack, 'PermissionsBoundary', boundaryName),
  );
}

/** Adds statements to a role's policy. */
const grantTo = (role: iam.Role) => (statement: iam.PolicyStatementProps) =>
  role.addToPolicy(new iam.PolicyStatement(statement));

export class DeliveryStack extends Stack {
  constructor(scope: Construct, id: string, props: DeliveryStackProps) {
    super(scope, id, props);
    if (!/^[A-Za-z0-9][A-Za-z0-9-]{0,38}\/[A-Za-z0-9._-]{1,100}$/.test(props.githubRepo)) {
      throw new Error(`githubRepo must be owner/name, got ${JSON.stringify(props.githubRepo)}`);
    }
    Tags.of(this).add('app', 'rxbridge');
    const providerArn =
      props.oidcProviderArn ??
      new iam.OidcProviderNative(this, 'GitHubOidc', {
        url: `https://${GITHUB_ISSUER}`,
        clientIds: ['sts.amazonaws.com'],
        removalPolicy: RemovalPolicy.RETAIN,
      }).oidcProviderArn;
    const qualifier = props.bootstrapQualifier ?? 'hnb659fds';
    for (const env of ENVIRONMENTS) {
      this.deployEnvironment(env, props.githubRepo, providerArn, qualifier);
    }
  }

  private deployEnvironment(env: Environment, repo: string, providerArn: string, qualifier: string): void {
    const names = roleNames(env);
    const stages = stagesOf(env);
    const arn = (service: string, resource: string, sep = ArnFormat.SLASH_RESOURCE_NAME) =>
      this.formatArn({ service, resource, arnFormat: sep });
    const s3 = (name: string) => `arn:${this.partition}:s3:::${name}`;
    const stack = (s: string) => `rxbridge-${s}`;
    const assets = `cdk-${qualifier}-assets-${this.account}-${this.region}`;
    // Resource ARNs of a set of stages, for the names the application stack gives them.
    const resourcesOf = (list: string[]) =>
      list.flatMap((s) => [
        arn('cloudformation', `stack/${stack(s)}/*`),
        arn('dynamodb', `table/${stack(s)}`),
        arn('dynamodb', `table/${stack(s)}/*`),
        arn('lambda', `function:${stack(s)}-*`, ArnFormat.COLON_RESOURCE_NAME),
        `arn:${this.partition}:iam::${this.account}:role/${stack(s)}-*`,
        s3(`${stack(s)}-*`),
        s3(`${stack(s)}-*/*`),
        arn('logs', `log-group:/rxbridge/${s}/*`, ArnFormat.COLON_RESOURCE_NAME),
        arn('logs', `log-group:/aws/lambda/${stack(s)}-*`, ArnFormat.COLON_RESOURCE_NAME),
        arn('sqs', `${stack(s)}-*`, ArnFormat.NO_RESOURCE_NAME),
        arn('secretsmanager', `secret:${stack(s)}/*`, ArnFormat.COLON_RESOURCE_NAME),
        arn('events', `rule/${stack(s)}-*`),
        arn('cloudwatch', `alarm:${stack(s)}-*`, ArnFormat.COLON_RESOURCE_NAME),
        arn('kms', `alias/${stack(s)}`),
      ]);
    const allowed = resourcesOf(stages.allow);
    const denied = resourcesOf(stages.deny);
    const carveOut = (actions: string[]) =>
      denied.length === 0
        ? []
        : [new iam.PolicyStatement({ effect: iam.Effect.DENY, actions, resources: denied })];
    // KMS keys, user pools and HTTP APIs have no name in their ARN: the stage's tag (the
    // application stack tags everything `stage=<stage>`) scopes keys and pools.
    const tagged = (key: 'aws:ResourceTag/stage' | 'aws:RequestTag/stage') =>
      env === 'preview'
        ? { StringNotEquals: { [key]: [...RESERVED_STAGES] }, Null: { [key]: 'false' } }
        : { StringEquals: { [key]: env } };

    // The ARN the application stack names (`-c permissionsBoundary=NAME`), spelled out.
    const boundaryArn = `arn:${this.partition}:iam::${this.account}:policy/${names.boundary}`;
    new iam.ManagedPolicy(this, `${env}Boundary`, {
      managedPolicyName: names.boundary,
      description: `rxbridge ${env}: the most any role of a ${env} stage may do`,
      statements: [
        new iam.PolicyStatement({
          sid: 'StageResources',
          actions: [
            'dynamodb:*',
            's3:*',
            'sqs:*',
            'secretsmanager:GetSecretValue',
            'secretsmanager:DescribeSecret',
            'logs:*',
          ],
          resources: allowed,
        }),
        new iam.PolicyStatement({
          sid: 'StageKeys',
          actions: [
            'kms:Decrypt',
            'kms:Encrypt',
            'kms:GenerateDataKey*',
            'kms:ReEncrypt*',
            'kms:DescribeKey',
            'kms:Sign',
            'kms:GetPublicKey',
          ],
          resources: [arn('kms', 'key/*')],
          conditions: tagged('aws:ResourceTag/stage'),
        }),
        new iam.PolicyStatement({
          sid: 'Telemetry',
          actions: ['cloudwatch:PutMetricData', 'xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
          resources: ['*'],
        }),
        ...carveOut(['*']),
      ],
    });

    const execution = new iam.Role(this, `${env}Execution`, {
      roleName: names.execution,
      description: `rxbridge ${env}: CloudFormation creates the ${env} stages' resources as this role`,
      assumedBy: new iam.ServicePrincipal('cloudformation.amazonaws.com'),
    });
    const exec = grantTo(execution);
    exec({
      sid: 'StageResources',
      actions: [
        'dynamodb:*',
        's3:*',
        'sqs:*',
        'secretsmanager:*',
        'logs:*',
        'lambda:*',
        'events:*',
        'cloudwatch:*',
      ],
      resources: allowed,
    });
    exec({
      sid: 'StageRolesWithBoundary',
      actions: ['iam:CreateRole', 'iam:PutRolePermissionsBoundary'],
      resources: allowed,
      conditions: { StringEquals: { 'iam:PermissionsBoundary': boundaryArn } },
    });
    exec({
      sid: 'StageRoles',
      actions: [
        'iam:GetRole',
        'iam:GetRolePolicy',
        'iam:PutRolePolicy',
        'iam:DeleteRolePolicy',
        'iam:AttachRolePolicy',
        'iam:DetachRolePolicy',
        'iam:DeleteRole',
        'iam:TagRole',
        'iam:UntagRole',
        'iam:UpdateAssumeRolePolicy',
        'iam:ListRoleTags',
        'iam:ListAttachedRolePolicies',
        'iam:ListRolePolicies',
      ],
      resources: allowed,
    });
    exec({
      sid: 'PassStageRolesToTheirServices',
      actions: ['iam:PassRole'],
      resources: allowed,
      conditions: {
        StringEquals: { 'iam:PassedToService': ['lambda.amazonaws.com', 'apigateway.amazonaws.com'] },
      },
    });
    exec({
      sid: 'CreateStageKey',
      actions: ['kms:CreateKey', 'kms:TagResource'],
      resources: ['*'],
      conditions: tagged('aws:RequestTag/stage'),
    });
    exec({
      sid: 'StageKey',
      actions: ['kms:*'],
      resources: [arn('kms', 'key/*')],
      conditions: tagged('aws:ResourceTag/stage'),
    });
    exec({
      sid: 'StageKeyAlias',
      actions: ['kms:CreateAlias', 'kms:DeleteAlias', 'kms:UpdateAlias'],
      resources: allowed,
    });
    exec({
      sid: 'CreateStagePool',
      actions: ['cognito-idp:CreateUserPool', 'cognito-idp:TagResource'],
      resources: ['*'],
      conditions: tagged('aws:RequestTag/stage'),
    });
    exec({
      sid: 'StagePool',
      actions: ['cognito-idp:*'],
      resources: [arn('cognito-idp', 'userpool/*')],
      conditions: tagged('aws:ResourceTag/stage'),
    });
    exec({
      sid: 'HttpApis',
      actions: [
        'apigateway:GET',
        'apigateway:POST',
        'apigateway:PUT',
        'apigateway:PATCH',
        'apigateway:DELETE',
      ],
      resources: [
        `arn:${this.partition}:apigateway:${this.region}::/apis`,
        `arn:${this.partition}:apigateway:${this.region}::/apis/*`,
        `arn:${this.partition}:apigateway:${this.region}::/tags/*`,
      ],
    });
    exec({
      sid: 'ApiAccessLogDelivery',
      actions: [
        'logs:CreateLogDelivery',
        'logs:GetLogDelivery',
        'logs:UpdateLogDelivery',
        'logs:DeleteLogDelivery',
        'logs:ListLogDeliveries',
        'logs:PutResourcePolicy',
        'logs:DescribeResourcePolicies',
        'logs:DescribeLogGroups',
      ],
      resources: ['*'],
    });
    exec({
      sid: 'SecretsExtensionLayer',
      actions: ['lambda:GetLayerVersion'],
      resources: [
        `arn:${this.partition}:lambda:${this.region}:*:layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:*`,
      ],
    });
    exec({
      sid: 'FunctionCode',
      actions: ['s3:GetObject', 's3:GetObjectVersion'],
      resources: [s3(`${assets}/*`)],
    });
    for (const deny of carveOut(['*'])) execution.addToPolicy(deny);

    const deploy = new iam.Role(this, `${env}Deploy`, {
      roleName: names.deploy,
      description: `rxbridge ${env}: GitHub Actions jobs of ${repo} in the ${env} environment deploy as this role`,
      maxSessionDuration: Duration.hours(1),
      assumedBy: new iam.FederatedPrincipal(
        providerArn,
        {
          StringEquals: {
            [`${GITHUB_ISSUER}:aud`]: 'sts.amazonaws.com',
            [`${GITHUB_ISSUER}:sub`]: `repo:${repo}:environment:${env}`,
          },
        },
        'sts:AssumeRoleWithWebIdentity',
      ),
    });
    const stackArns = (list: string[]) => list.map((s) => arn('cloudformation', `stack/${stack(s)}/*`));
    const dep = grantTo(deploy);
    dep({
      sid: 'TheEnvironmentsStacks',
      actions: [
        'cloudformation:CreateChangeSet',
        'cloudformation:DescribeChangeSet',
        'cloudformation:ExecuteChangeSet',
        'cloudformation:DeleteChangeSet',
        'cloudformation:DeleteStack',
        'cloudformation:DescribeStacks',
        'cloudformation:DescribeStackEvents',
        'cloudformation:GetTemplate',
        'cloudformation:GetTemplateSummary',
        'cloudformation:ListStackResources',
        'cloudformation:ListChangeSets',
        'cloudformation:DescribeStackResource',
        'cloudformation:DescribeStackResources',
        'cloudformation:RollbackStack',
        'cloudformation:ContinueUpdateRollback',
      ],
      resources: stackArns(stages.allow),
    });
    if (stages.deny.length > 0) {
      dep({ effect: iam.Effect.DENY, actions: ['cloudformation:*'], resources: stackArns(stages.deny) });
    }
    dep({
      sid: 'PassOnlyThisEnvironmentsExecutionRole',
      actions: ['iam:PassRole'],
      resources: [execution.roleArn],
      conditions: { StringEquals: { 'iam:PassedToService': 'cloudformation.amazonaws.com' } },
    });
    dep({
      sid: 'PublishAssets',
      actions: [
        's3:GetObject',
        's3:PutObject',
        's3:GetBucketLocation',
        's3:ListBucket',
        's3:GetEncryptionConfiguration',
      ],
      resources: [s3(assets), s3(`${assets}/*`)],
    });
    dep({
      sid: 'BootstrapVersion',
      actions: ['ssm:GetParameter', 'ssm:GetParameters'],
      resources: [arn('ssm', `parameter/cdk-bootstrap/${qualifier}/version`)],
    });
    dep({
      sid: 'BootstrapStack',
      actions: ['cloudformation:DescribeStacks'],
      resources: [arn('cloudformation', 'stack/CDKToolkit/*')],
    });
    if (env === 'preview') {
      // scripts/smoke-clinic adds a sandbox clinic to a branch's table (never to staging or prod).
      const tables = ['*'].flatMap((s) => [
        arn('dynamodb', `table/${stack(s)}`),
        arn('dynamodb', `table/${stack(s)}/*`),
      ]);
      dep({
        sid: 'SmokeClinicInBranchTables',
        actions: [
          'dynamodb:GetItem',
          'dynamodb:PutItem',
          'dynamodb:UpdateItem',
          'dynamodb:Query',
          'dynamodb:ConditionCheckItem',
        ],
        resources: tables,
      });
      dep({
        sid: 'BranchTableKeyThroughDynamoDb',
        actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey*', 'kms:DescribeKey'],
        resources: [arn('kms', 'key/*')],
        conditions: {
          ...tagged('aws:ResourceTag/stage'),
          StringLike: { 'kms:ViaService': 'dynamodb.*.amazonaws.com' },
        },
      });
      dep({
        effect: iam.Effect.DENY,
        actions: ['dynamodb:*'],
        resources: denied.filter((a) => a.includes(':dynamodb:')),
      });
    }

    new CfnOutput(this, `${env}DeployRoleArn`, {
      value: deploy.roleArn,
      description: `AWS_DEPLOY_ROLE_ARN of the ${env} environment`,
    });
    new CfnOutput(this, `${env}ExecutionRoleArn`, {
      value: execution.roleArn,
      description: `RXBRIDGE_CFN_EXEC_ROLE of the ${env} environment`,
    });
    new CfnOutput(this, `${env}BoundaryName`, {
      value: names.boundary,
      description: `RXBRIDGE_PERMISSIONS_BOUNDARY of the ${env} environment`,
    });
  }
}
