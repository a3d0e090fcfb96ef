#!/usr/bin/env node
// The delivery stack, deployed once per account by an administrator (docs/delivery.md):
// `cdk deploy --app 'npx tsx bin/delivery.ts' -c githubRepo=OWNER/NAME`.
import { App } from 'aws-cdk-lib';
import { DeliveryStack } from '../lib/delivery-stack.ts';

const app = new App();
const githubRepo: string | undefined = app.node.tryGetContext('githubRepo');
if (!githubRepo) {
  throw new Error('-c githubRepo=OWNER/NAME is required: the repository whose workflows deploy');
}
new DeliveryStack(app, 'rxbridge-delivery', {
  githubRepo,
  oidcProviderArn: app.node.tryGetContext('oidcProviderArn'),
  bootstrapQualifier: app.node.tryGetContext('bootstrapQualifier'),
});
