// The package entry for `import ... from 'polyroute'`: the same objects as the CommonJS entry.
import polyroute from './polyroute.cjs'

export const { Router, ChatStream, ErrorCode, allCodes, validateRequest, isPolyrouteError } = polyroute
export default polyroute
