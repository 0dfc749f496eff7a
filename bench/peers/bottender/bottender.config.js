// Bottender's settings for the bench (bench/peers/__init__.py starts it: NODE_ENV=production bottender start).
// The bench passes its fake Telegram Bot API and the rest through the environment.
module.exports = {
  initialState: {
    count: 0,
  },

  session: {
    driver: 'memory',
    stores: {
      memory: {
        // Bottender's LRU (lru-cache); above the bench's 1,000 users so that no session is evicted.
        maxSize: Number(process.env.SESSION_MAX_SIZE || 100000),
      },
    },
  },

  channels: {
    telegram: {
      enabled: true,
      path: '/webhooks/telegram',
      accessToken: process.env.TELEGRAM_ACCESS_TOKEN,
      // messaging-api-telegram's TelegramClient posts to `${origin}/bot${accessToken}/sendMessage`
      // (https://api.telegram.org by default): here, the bench's fake Bot API.
      origin: process.env.TELEGRAM_API_ORIGIN,
      // true: the webhook is answered once the handler has run and the session is written, as botkit
      // and the baseline answer. Bottender's default (false) answers 200 first and runs the bot after.
      sync: process.env.BOTTENDER_SYNC !== 'false',
    },
  },
};
