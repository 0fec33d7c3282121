import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';

export interface RepositoryAccess {
  read?: boolean;
  /** Put objects (multipart included: abort, and the key's Decrypt to complete parts). */
  write?: boolean;
  delete?: boolean;
  /** Narrower write: only keys matching this pattern under the prefix (e.g. `*\/verification.json`). */
  writePattern?: string;
  /** List and abort interrupted multipart uploads under the prefix (prune's cleanupIncomplete). */
  cleanup?: boolean;
}

/**
 * Exactly the S3 and KMS actions the repository code calls (no `s3:Get*`-style action
 * wildcards), on one key prefix: each job can touch only its own component's backups.
 */
export function grantRepository(grantee: iam.IGrantable, bucket: s3.IBucket, key: kms.IKey, prefix: string, access: RepositoryAccess): void {
  const objects = `${bucket.bucketArn}/${prefix}*`;
  const add = (s: iam.PolicyStatement) => grantee.grantPrincipal.addToPrincipalPolicy(s);
  add(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn], conditions: { StringLike: { 's3:prefix': [`${prefix}*`] } } }));
  const objectActions = [...(access.read ? ['s3:GetObject'] : []), ...(access.write ? ['s3:PutObject', 's3:AbortMultipartUpload'] : []), ...(access.delete ? ['s3:DeleteObject'] : [])];
  if (objectActions.length > 0) add(new iam.PolicyStatement({ actions: objectActions, resources: [objects] }));
  if (access.cleanup) {
    // ListBucketMultipartUploads has no s3:prefix condition key (a condition on it would
    // never match, found by the IAM sufficiency test): it lists upload metadata only, and
    // aborting stays limited to the prefix.
    add(new iam.PolicyStatement({ actions: ['s3:ListBucketMultipartUploads'], resources: [bucket.bucketArn] }));
    if (!access.write) add(new iam.PolicyStatement({ actions: ['s3:AbortMultipartUpload'], resources: [objects] }));
  }
  if (access.writePattern) add(new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [`${bucket.bucketArn}/${prefix}${access.writePattern}`] }));
  const keyActions = [...(access.read || access.write || access.writePattern ? ['kms:Decrypt'] : []), ...(access.write || access.writePattern ? ['kms:GenerateDataKey'] : [])];
  if (keyActions.length > 0) add(new iam.PolicyStatement({ actions: keyActions, resources: [key.keyArn] }));
}
