import type { Logger } from '@aws-lambda-powertools/logger';
import type { Log } from '../../src/log.js';

/** The domain's Log interface over Powertools Logger (structured JSON in CloudWatch Logs). */
export function powertoolsLog(logger: Logger): Log {
  return {
    debug: (message, context) => (context ? logger.debug(message, context) : logger.debug(message)),
    info: (message, context) => (context ? logger.info(message, context) : logger.info(message)),
    warn: (message, context) => (context ? logger.warn(message, context) : logger.warn(message)),
    error: (message, context) => (context ? logger.error(message, context) : logger.error(message)),
  };
}
