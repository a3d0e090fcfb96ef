// The delivery stack: GitHub's OIDC provider, and per environment a deploy role that only that
// repository's jobs in that GitHub environment can assume, allowed to drive only that
// environment's stacks and to hand CloudFormation only that environment's execution role, which
// creates roles only with that environment's permissions boundary. Offline, like stack.test.ts.
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, test } from 'vitest';
import {
  applyPermissionsBoundary,
  DeliveryStack,
  ENVIRONMENTS,
  type Environment,
  roleNames,
} from '../lib/delivery-stack.ts';
import { RxbridgeStack } from '../lib/rxbridge-stack.ts';

const REPO = 'example-org/rxbridge';
const template = Template.fromStack(new DeliveryStack(new App(), 'rxbridge-delivery', { githubRepo: REPO }));

type Statement = {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
  Principal?: Record<string, unknown>;
};
type Resource = { Type: string; Properties: Record<string, unknown> };
const resources = (type: string) => Object.entries(template.findResources(type) as Record<string, Resource>);

/** An intrinsic-laden value as the string CloudFormation would make of it (pseudo params named). */
function render(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map(render).join(',');
  const o = v as Record<string, unknown>;
  if ('Fn::Join' in o) {
    const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
    return parts.map(render).join(sep);
  }
  if ('Ref' in o) {
    const pseudo: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::Region': 'eu-west-2',
      'AWS::AccountId': '111111111111',
    };
    return pseudo[o.Ref as string] ?? `ref:${o.Ref}`;
  }
  if ('Fn::GetAtt' in o) return `getatt:${(o['Fn::GetAtt'] as string[]).join('.')}`;
  return JSON.stringify(o);
}
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v]);
const actionsOf = (s: Statement) => list(s.Action) as string[];
const resourcesOf = (s: Statement) => list(s.Resource).map(render);

/** The one resource of the type whose property `prop` is `name`, with its logical id. */
const byName = (type: string, prop: string, name: string): [string, Resource] => {
  const found = resources(type).filter(([, r]) => r.Properties[prop] === name);
  expect(found, name).toHaveLength(1);
  return found[0];
};
const roleId = (name: string) => byName('AWS::IAM::Role', 'RoleName', name)[0];
const documentOf = (v: unknown) => (v as { Statement: Statement[] }).Statement;
/** Every statement of the role's inline and overflow policies. */
const statementsOf = (name: string): Statement[] => {
  const id = roleId(name);
  return [...resources('AWS::IAM::Policy'), ...resources('AWS::IAM::ManagedPolicy')]
    .filter(([, p]) => JSON.stringify(p.Properties.Roles ?? []).includes(`"${id}"`))
    .flatMap(([, p]) => documentOf(p.Properties.PolicyDocument));
};
const trustOf = (name: string) =>
  documentOf(byName('AWS::IAM::Role', 'RoleName', name)[1].Properties.AssumeRolePolicyDocument);
const boundaryOf = (env: Environment) =>
  documentOf(
    byName('AWS::IAM::ManagedPolicy', 'ManagedPolicyName', roleNames(env).boundary)[1].Properties
      .PolicyDocument,
  );
const boundaryArn = (env: Environment) => `arn:aws:iam::111111111111:policy/${roleNames(env).boundary}`;

describe('GitHub OIDC federation', () => {
  test('one provider for GitHub Actions tokens, audience sts.amazonaws.com, kept when the stack goes', () => {
    const providers = resources('AWS::IAM::OIDCProvider');
    expect(providers).toHaveLength(1);
    expect(providers[0][1].Properties.Url).toBe('https://token.actions.githubusercontent.com');
    expect(providers[0][1].Properties.ClientIdList).toEqual(['sts.amazonaws.com']);
    expect((template.toJSON().Resources[providers[0][0]] as { DeletionPolicy?: string }).DeletionPolicy).toBe(
      'Retain',
    );
  });

  test('an existing provider is used instead of a second one', () => {
    const arn = 'arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com';
    const t = Template.fromStack(
      new DeliveryStack(new App(), 'rxbridge-delivery', { githubRepo: REPO, oidcProviderArn: arn }),
    );
    t.resourceCountIs('AWS::IAM::OIDCProvider', 0);
    expect(JSON.stringify(t.toJSON())).toContain(arn);
  });

  test('the repository must be owner/name', () => {
    for (const bad of ['', 'rxbridge', 'owner/name/extra', 'own er/name', '*/rxbridge']) {
      expect(() => new DeliveryStack(new App(), 'd', { githubRepo: bad }), bad).toThrow(/owner\/name/);
    }
  });

  test('three deploy roles, one per environment, and nothing else GitHub can assume', () => {
    const federated = resources('AWS::IAM::Role').filter(([, r]) =>
      JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes('Federated'),
    );
    expect(federated.map(([, r]) => r.Properties.RoleName).sort()).toEqual(
      ENVIRONMENTS.map((e) => roleNames(e).deploy).sort(),
    );
  });

  test.each(ENVIRONMENTS)(
    '%s: only this repository, only jobs in that GitHub environment, one-hour sessions',
    (env) => {
      const trust = trustOf(roleNames(env).deploy);
      expect(trust).toHaveLength(1);
      const [s] = trust;
      expect(s.Effect).toBe('Allow');
      expect(s.Action).toBe('sts:AssumeRoleWithWebIdentity');
      expect(render(s.Principal?.Federated)).toMatch(/^ref:GitHubOidc/);
      // Exact matches only: no wildcard can widen the repository or the environment.
      expect(Object.keys(s.Condition ?? {})).toEqual(['StringEquals']);
      expect(s.Condition?.StringEquals).toEqual({
        'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
        'token.actions.githubusercontent.com:sub': `repo:${REPO}:environment:${env}`,
      });
      const role = resources('AWS::IAM::Role').find(
        ([, r]) => r.Properties.RoleName === roleNames(env).deploy,
      );
      expect(role?.[1].Properties.MaxSessionDuration).toBe(3600);
    },
  );
});

describe('deploy roles are scoped to their environment', () => {
  const cfnResources = (env: Environment, effect: string) =>
    statementsOf(roleNames(env).deploy)
      .filter((s) => s.Effect === effect && actionsOf(s).some((a) => a.startsWith('cloudformation:')))
      .flatMap(resourcesOf);

  test.each(['staging', 'prod'] as const)(
    '%s drives only its own stack (and reads the bootstrap stack)',
    (env) => {
      expect(cfnResources(env, 'Allow').sort()).toEqual(
        [
          'arn:aws:cloudformation:eu-west-2:111111111111:stack/CDKToolkit/*',
          `arn:aws:cloudformation:eu-west-2:111111111111:stack/rxbridge-${env}/*`,
        ].sort(),
      );
    },
  );

  test('preview drives branch stacks but is denied staging, prod and the delivery stack', () => {
    expect(cfnResources('preview', 'Allow')).toContain(
      'arn:aws:cloudformation:eu-west-2:111111111111:stack/rxbridge-*/*',
    );
    expect(cfnResources('preview', 'Deny').sort()).toEqual(
      ['delivery', 'prod', 'staging'].map(
        (s) => `arn:aws:cloudformation:eu-west-2:111111111111:stack/rxbridge-${s}/*`,
      ),
    );
  });

  test.each(ENVIRONMENTS)('%s may pass only its own execution role, only to CloudFormation', (env) => {
    const pass = statementsOf(roleNames(env).deploy).filter((s) => actionsOf(s).includes('iam:PassRole'));
    expect(pass).toHaveLength(1);
    expect(resourcesOf(pass[0])).toEqual([`getatt:${roleId(roleNames(env).execution)}.Arn`]);
    expect(pass[0].Condition).toEqual({
      StringEquals: { 'iam:PassedToService': 'cloudformation.amazonaws.com' },
    });
  });

  test.each(ENVIRONMENTS)('%s: no action is granted on every resource, no IAM action but PassRole', (env) => {
    for (const s of statementsOf(roleNames(env).deploy).filter((x) => x.Effect === 'Allow')) {
      expect(resourcesOf(s), s.Sid).not.toContain('*');
      expect(
        actionsOf(s).filter((a) => a.startsWith('iam:') && a !== 'iam:PassRole'),
        s.Sid,
      ).toEqual([]);
    }
  });

  test('only preview may write to tables (the smoke clinic of a branch stage), never staging or prod', () => {
    const writes = (env: Environment) =>
      statementsOf(roleNames(env).deploy).filter(
        (s) => s.Effect === 'Allow' && actionsOf(s).some((a) => a.startsWith('dynamodb:')),
      );
    expect(writes('staging')).toEqual([]);
    expect(writes('prod')).toEqual([]);
    const denied = statementsOf(roleNames('preview').deploy)
      .filter((s) => s.Effect === 'Deny' && actionsOf(s).includes('dynamodb:*'))
      .flatMap(resourcesOf);
    for (const s of ['prod', 'staging', 'delivery']) {
      expect(denied).toContain(`arn:aws:dynamodb:eu-west-2:111111111111:table/rxbridge-${s}`);
    }
  });
});

describe('execution roles and boundaries', () => {
  test.each(ENVIRONMENTS)('%s: only CloudFormation assumes the execution role', (env) => {
    const trust = trustOf(roleNames(env).execution);
    expect(trust).toHaveLength(1);
    expect(trust[0].Principal).toEqual({ Service: 'cloudformation.amazonaws.com' });
  });

  test.each(ENVIRONMENTS)('%s creates roles only with its own permissions boundary', (env) => {
    const create = statementsOf(roleNames(env).execution).filter((s) =>
      actionsOf(s).includes('iam:CreateRole'),
    );
    expect(create).toHaveLength(1);
    expect(render(create[0].Condition?.StringEquals?.['iam:PermissionsBoundary'])).toBe(boundaryArn(env));
    const boundaries = resources('AWS::IAM::ManagedPolicy').filter(
      ([, p]) => p.Properties.ManagedPolicyName === roleNames(env).boundary,
    );
    expect(boundaries).toHaveLength(1);
    // The boundary itself grants no IAM, STS or Lambda administration.
    const actions = (
      boundaries[0][1].Properties.PolicyDocument as { Statement: Statement[] }
    ).Statement.filter((s) => s.Effect === 'Allow').flatMap(actionsOf);
    expect(actions.filter((a) => /^(iam|sts|lambda|organizations|cloudformation):/.test(a))).toEqual([]);
  });

  test.each(['staging', 'prod'] as const)('%s: every named resource is one of its own stage', (env) => {
    const other = ['staging', 'prod'].find((e) => e !== env);
    const docs = [...statementsOf(roleNames(env).execution), ...boundaryOf(env)];
    for (const s of docs.filter((x) => x.Effect === 'Allow')) {
      for (const r of resourcesOf(s)) {
        expect(r, s.Sid).not.toContain(`rxbridge-${other}`);
        expect(r, s.Sid).not.toContain('rxbridge-*');
        if (/rxbridge[-/]/.test(r)) expect(r, s.Sid).toMatch(new RegExp(`rxbridge[-/]${env}`));
      }
    }
  });

  test.each(['staging', 'prod'] as const)('%s: keys and user pools only with its own stage tag', (env) => {
    for (const s of statementsOf(roleNames(env).execution).filter((x) =>
      actionsOf(x).some((a) => a.startsWith('kms:*') || a.startsWith('cognito-idp:')),
    )) {
      const tag = s.Condition?.StringEquals ?? {};
      expect(Object.values(tag), s.Sid).toEqual([env]);
    }
  });

  test.each(ENVIRONMENTS)('%s: no execution role can change the pipeline roles or boundaries', (env) => {
    // IAM's wildcards: `*` any run of characters, `?` one.
    const glob = (pattern: string) =>
      new RegExp(
        `^${pattern
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '.*')
          .replace(/\?/g, '.')}$`,
      );
    const own = ENVIRONMENTS.flatMap((e) => {
      const n = roleNames(e);
      return [
        `arn:aws:iam::111111111111:role/${n.deploy}`,
        `arn:aws:iam::111111111111:role/${n.execution}`,
        `arn:aws:iam::111111111111:policy/${n.boundary}`,
      ];
    });
    const statements = statementsOf(roleNames(env).execution);
    const reaching = (effect: string, arn: string) =>
      statements.filter(
        (s) =>
          s.Effect === effect &&
          actionsOf(s).some((a) => a === '*' || a.startsWith('iam:')) &&
          resourcesOf(s).some((r) => glob(r).test(arn)),
      );
    for (const arn of own) {
      if (reaching('Allow', arn).length > 0) {
        expect(reaching('Deny', arn), `${env} reaches ${arn}`).not.toEqual([]);
      }
    }
    // The check itself sees a stage's own roles.
    const stageRole = `arn:aws:iam::111111111111:role/rxbridge-${env === 'preview' ? 'alice' : env}-ApiServiceRole-X1`;
    expect(reaching('Allow', stageRole)).not.toEqual([]);
  });

  test('preview excludes the reserved stages by name and by tag', () => {
    const statements = statementsOf(roleNames('preview').execution);
    const denied = statements.filter((s) => s.Effect === 'Deny').flatMap(resourcesOf);
    for (const s of ['prod', 'staging']) {
      expect(denied).toContain(`arn:aws:dynamodb:eu-west-2:111111111111:table/rxbridge-${s}`);
      expect(denied).toContain(`arn:aws:logs:eu-west-2:111111111111:log-group:/rxbridge/${s}/*`);
      expect(denied).toContain(`arn:aws:secretsmanager:eu-west-2:111111111111:secret:rxbridge-${s}/*`);
    }
    const keys = statements.find((s) => s.Sid === 'StageKey');
    expect(keys?.Condition?.StringNotEquals).toEqual({
      'aws:ResourceTag/stage': ['prod', 'staging', 'delivery'],
    });
    expect(keys?.Condition?.Null).toEqual({ 'aws:ResourceTag/stage': 'false' });
  });
});

describe('a stage deployed by the pipeline', () => {
  test('every role of the stage carries the environment boundary', () => {
    const stack = new RxbridgeStack(new App(), 'rxbridge-feature-x', { stage: 'feature-x' });
    applyPermissionsBoundary(stack, roleNames('preview').boundary);
    const t = Template.fromStack(stack);
    const roles = Object.values(t.findResources('AWS::IAM::Role') as Record<string, Resource>);
    expect(roles.length).toBeGreaterThan(0);
    for (const r of roles) {
      expect(render(r.Properties.PermissionsBoundary)).toBe(boundaryArn('preview'));
    }
  });

  test('the application stack tags its resources with the stage, which the tag conditions read', () => {
    const t = Template.fromStack(
      new RxbridgeStack(new App(), 'rxbridge-prod', { stage: 'prod', publicUrl: 'https://rx.example.co.uk' }),
    );
    const key = Object.values(t.findResources('AWS::KMS::Key') as Record<string, Resource>)[0];
    expect(key.Properties.Tags).toContainEqual({ Key: 'stage', Value: 'prod' });
    const pool = Object.values(t.findResources('AWS::Cognito::UserPool') as Record<string, Resource>)[0];
    expect(pool.Properties.UserPoolTags).toMatchObject({ stage: 'prod' });
  });

  test('the stage names the roles are scoped to are the ones the application stack uses', () => {
    const stack = new RxbridgeStack(new App(), 'rxbridge-staging', { stage: 'staging' });
    expect(Stack.of(stack).stackName).toBe('rxbridge-staging');
    const t = Template.fromStack(stack);
    const table = Object.values(t.findResources('AWS::DynamoDB::Table') as Record<string, Resource>)[0];
    expect(table.Properties.TableName).toBe('rxbridge-staging');
  });
});
