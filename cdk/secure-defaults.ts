import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Stage } from './stage-config.js';

/**
 * Secure defaults as plain functions (after aws-solutions-constructs'
 * s3-bucket-defaults): each construct starts from these and adds only what it needs,
 * so a reviewer reads the security posture in one file.
 */

/** The backup repository: never public, TLS only, KMS, versioned, nothing ever expires by age. */
export function backupBucketProps(stage: Stage, key: kms.IKey, accessLogs: s3.IBucket): s3.BucketProps {
  const b = stage.bucket;
  return {
    encryption: s3.BucketEncryption.KMS,
    encryptionKey: key,
    // One data key per bucket instead of one KMS call per object part.
    bucketKeyEnabled: true,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    minimumTLSVersion: 1.2,
    versioned: true,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    serverAccessLogsBucket: accessLogs,
    serverAccessLogsPrefix: 'backup-bucket/',
    // The verify Lambda starts on each new manifest through EventBridge.
    eventBridgeEnabled: true,
    objectLockEnabled: b.objectLock ? true : undefined,
    objectLockDefaultRetention: b.objectLock
      ? b.objectLock.mode === 'COMPLIANCE'
        ? s3.ObjectLockRetention.compliance(Duration.days(b.objectLock.days))
        : s3.ObjectLockRetention.governance(Duration.days(b.objectLock.days))
      : undefined,
    lifecycleRules: backupLifecycleRules(stage),
    removalPolicy: b.retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    autoDeleteObjects: false,
  };
}

/**
 * Old backups move to cheaper storage but never expire: retention is the prune job's,
 * which always keeps the newest verified backups. Only what prune already deleted
 * (noncurrent versions) and abandoned multipart uploads go away on their own.
 */
export function backupLifecycleRules(stage: Stage): s3.LifecycleRule[] {
  const b = stage.bucket;
  return [
    { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
    {
      id: 'cheaper-storage-with-age',
      transitions: [
        { storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(b.infrequentAccessAfterDays) },
        { storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(b.glacierInstantRetrievalAfterDays) },
      ],
    },
    { id: 'expire-pruned-versions', noncurrentVersionExpiration: Duration.days(b.noncurrentVersionDays), expiredObjectDeleteMarker: true },
  ];
}

/** Server access logs of the backup bucket. S3 log delivery cannot write SSE-KMS objects, so SSE-S3 here. */
export function accessLogBucketProps(stage: Stage): s3.BucketProps {
  return {
    encryption: s3.BucketEncryption.S3_MANAGED,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    versioned: true,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
    lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(365), noncurrentVersionExpiration: Duration.days(30) }],
    removalPolicy: stage.bucket.retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
  };
}

export function keyProps(stage: Stage, description: string): kms.KeyProps {
  return {
    description,
    enableKeyRotation: true,
    removalPolicy: stage.bucket.retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    pendingWindow: Duration.days(30),
  };
}

/** Scheduler and EventBridge dead letters: encrypted, TLS only, kept the SQS maximum (14 days). */
/**
 * SQS-managed encryption (SSE-SQS): with a customer key every producer (the Scheduler's
 * roles, EventBridge) would also need kms:GenerateDataKey and kms:Decrypt on it, and a
 * missing grant loses exactly the messages that say a job never started.
 */
export function deadLetterQueueProps(): sqs.QueueProps {
  return {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  };
}

export function logGroupProps(stage: Stage, logGroupName?: string): logs.LogGroupProps {
  return {
    logGroupName,
    retention: stage.logRetentionDays as logs.RetentionDays,
    // The jobs' logs explain the backups in the bucket: kept as long as the bucket is.
    removalPolicy: stage.bucket.retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
  };
}
