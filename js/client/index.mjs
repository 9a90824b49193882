// chatseal/client as an ES module: the CommonJS build re-exported, so an app
// that mixes import and require still gets one copy of the SDK.
import sdk from './index.js'

export const { connect, Client, ChatError } = sdk
export default sdk
