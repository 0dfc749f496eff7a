// The counting bot, as Bottender's session guide writes it (docs/the-basics-session.md, "A Counting Bot
// Example"): the same bot as botkit's examples/counter/bot.py.
module.exports = async function App(context) {
  const count = context.state.count + 1;

  context.setState({
    count,
  });

  await context.sendText(`Count: ${count}`);
};
