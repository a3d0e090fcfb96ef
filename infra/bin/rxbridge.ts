#!/usr/bin/env node
// One stack per stage: `cdk synth -c stage=alice` is a fully isolated copy for Alice;
// `-c stage=prod` adds retention and deletion protection.
import { App } from 'aws-cdk-lib';
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
new RxbridgeStack(app, `rxbridge-${stage}`, {
  stage,
  lambdaAsset,
  publicUrl,
  cognitoDomainPrefix,
  apiReservedConcurrency,
  anchorIntervalMinutes,
});
