#!/usr/bin/env node
// One stack per stage: `cdk synth -c stage=alice` is a fully isolated copy for Alice;
// `-c stage=prod` adds retention and deletion protection.
import { App, CliCredentialsStackSynthesizer } from 'aws-cdk-lib';
import { applyPermissionsBoundary } from '../lib/delivery-stack.ts';
import { RxbridgeStack } from '../lib/rxbridge-stack.ts';

const app = new App();
const stage: string = app.node.tryGetContext('stage') ?? 'dev';
const lambdaAsset: string | undefined = app.node.tryGetContext('lambdaAsset');
const publicUrl: string | undefined = app.node.tryGetContext('publicUrl');
const cognitoDomainPrefix: string | undefined = app.node.tryGetContext('cognitoDomainPrefix');
// `-c apiReservedConcurrency=N` (a string on the command line, a number in cdk.json).
const concurrency: string | number | undefined = app.node.tryGetContext('apiReservedConcurrency');
const apiReservedConcurrency = concurrency === undefined ? undefined : Number(concurrency);
const anchorMinutes: string | undefined = app.node.tryGetContext('anchorIntervalMinutes');
const anchorIntervalMinutes = anchorMinutes === undefined ? undefined : Number(anchorMinutes);
// The pipeline (scripts/deploy with RXBRIDGE_CFN_EXEC_ROLE): CDK uses the caller's credentials,
// a deploy role scoped to one environment, instead of the bootstrap's deploy role, and every IAM
// role of the stage carries that environment's permissions boundary (lib/delivery-stack.ts).
const cliCredentials =
  app.node.tryGetContext('cliCredentials') === 'true' || app.node.tryGetContext('cliCredentials') === true;
const permissionsBoundary: string | undefined = app.node.tryGetContext('permissionsBoundary');
const stack = new RxbridgeStack(app, `rxbridge-${stage}`, {
  stage,
  lambdaAsset,
  publicUrl,
  cognitoDomainPrefix,
  apiReservedConcurrency,
  anchorIntervalMinutes,
  ...(cliCredentials ? { synthesizer: new CliCredentialsStackSynthesizer() } : {}),
});
if (permissionsBoundary) {
  applyPermissionsBoundary(stack, permissionsBoundary);
}
