/**
 * Writes the demo data beside this file: sft.jsonl (prompt/completion pairs), prompts.jsonl (the
 * prompts that comparisons, PPO and GRPO sample from, each with its short answer for GRPO's
 * exact-match reward) and eval.jsonl (held-out prompts with their answers, in neither of the
 * others, on which the demo's judge compares the policies). Every answer follows a fixed template
 * per question, in English and Chinese, so a tiny model's progress is easy to see. Most SFT
 * answers then ramble on with a pleasantry ("I hope this helps!"): the behaviour the demo's
 * preference (answer in one sentence, in the question's language) trains away.
 *
 *   npx tsx media/demo/make-demo-data.ts
 */
import * as fs from 'fs';
import * as path from 'path';
import { gpt2Tokenizer } from '../../src/model/tokenizer';
import { Rng } from '../../src/util/rng';

/** English and Chinese forms of one fact. */
type Both = [en: string, zh: string];

interface Animal {
  name: Both;
  sound?: Both;
  colour?: Both;
  home: Both;
  food: Both;
  legs?: number;
  flies?: boolean;
}

// A fact is left out where the honest answer is "it depends".
const ANIMALS: Animal[] = [
  { name: ['cat', '猫'], sound: ['meow', '喵喵叫'], home: ['in a house', '房子里'], food: ['fish', '鱼'], legs: 4, flies: false },
  { name: ['dog', '狗'], sound: ['woof', '汪汪叫'], home: ['in a kennel', '狗窝里'], food: ['bones', '骨头'], legs: 4, flies: false },
  { name: ['cow', '奶牛'], sound: ['moo', '哞哞叫'], colour: ['black and white', '黑白相间'], home: ['on a farm', '农场里'], food: ['grass', '草'], legs: 4, flies: false },
  { name: ['sheep', '绵羊'], sound: ['baa', '咩咩叫'], colour: ['white', '白色'], home: ['on a farm', '农场里'], food: ['grass', '草'], legs: 4, flies: false },
  { name: ['pig', '猪'], sound: ['oink', '哼哼叫'], colour: ['pink', '粉色'], home: ['on a farm', '农场里'], food: ['corn', '玉米'], legs: 4, flies: false },
  { name: ['horse', '马'], sound: ['neigh', '咴咴叫'], home: ['on a farm', '农场里'], food: ['hay', '干草'], legs: 4, flies: false },
  { name: ['goat', '山羊'], sound: ['meh', '咩咩叫'], home: ['on a mountain', '山上'], food: ['grass', '草'], legs: 4, flies: false },
  { name: ['hen', '母鸡'], sound: ['cluck', '咯咯叫'], home: ['on a farm', '农场里'], food: ['seeds', '种子'], legs: 2 },
  { name: ['duck', '鸭子'], sound: ['quack', '嘎嘎叫'], home: ['on a pond', '池塘里'], food: ['water plants', '水草'], legs: 2, flies: true },
  { name: ['frog', '青蛙'], sound: ['ribbit', '呱呱叫'], colour: ['green', '绿色'], home: ['in a pond', '池塘里'], food: ['flies', '苍蝇'], legs: 4, flies: false },
  { name: ['lion', '狮子'], sound: ['roar', '吼叫'], colour: ['golden', '金黄色'], home: ['on the savanna', '草原上'], food: ['meat', '肉'], legs: 4, flies: false },
  { name: ['tiger', '老虎'], sound: ['roar', '吼叫'], colour: ['orange and black', '橙黑相间'], home: ['in the forest', '森林里'], food: ['meat', '肉'], legs: 4, flies: false },
  { name: ['wolf', '狼'], sound: ['awoo', '嚎叫'], colour: ['grey', '灰色'], home: ['in the forest', '森林里'], food: ['meat', '肉'], legs: 4, flies: false },
  { name: ['bear', '熊'], sound: ['grr', '嗷嗷叫'], colour: ['brown', '棕色'], home: ['in the forest', '森林里'], food: ['honey', '蜂蜜'], legs: 4, flies: false },
  { name: ['fox', '狐狸'], colour: ['orange', '橙色'], home: ['in the forest', '森林里'], food: ['mice', '老鼠'], legs: 4, flies: false },
  { name: ['elephant', '大象'], colour: ['grey', '灰色'], home: ['on the savanna', '草原上'], food: ['leaves', '树叶'], legs: 4, flies: false },
  { name: ['giraffe', '长颈鹿'], colour: ['yellow and brown', '黄棕色'], home: ['on the savanna', '草原上'], food: ['leaves', '树叶'], legs: 4, flies: false },
  { name: ['zebra', '斑马'], colour: ['black and white', '黑白相间'], home: ['on the savanna', '草原上'], food: ['grass', '草'], legs: 4, flies: false },
  { name: ['monkey', '猴子'], colour: ['brown', '棕色'], home: ['in the jungle', '丛林里'], food: ['bananas', '香蕉'], flies: false },
  { name: ['parrot', '鹦鹉'], sound: ['hello', '说你好'], colour: ['green', '绿色'], home: ['in the jungle', '丛林里'], food: ['nuts', '坚果'], legs: 2, flies: true },
  { name: ['panda', '熊猫'], colour: ['black and white', '黑白相间'], home: ['in a bamboo forest', '竹林里'], food: ['bamboo', '竹子'], legs: 4, flies: false },
  { name: ['koala', '考拉'], colour: ['grey', '灰色'], home: ['in a gum tree', '桉树上'], food: ['gum leaves', '桉树叶'], legs: 4, flies: false },
  { name: ['kangaroo', '袋鼠'], colour: ['brown', '棕色'], home: ['in Australia', '澳大利亚'], food: ['grass', '草'], flies: false },
  { name: ['penguin', '企鹅'], colour: ['black and white', '黑白相间'], home: ['in Antarctica', '南极'], food: ['fish', '鱼'], legs: 2, flies: false },
  { name: ['polar bear', '北极熊'], colour: ['white', '白色'], home: ['in the Arctic', '北极'], food: ['seals', '海豹'], legs: 4, flies: false },
  { name: ['camel', '骆驼'], colour: ['brown', '棕色'], home: ['in the desert', '沙漠里'], food: ['desert plants', '沙漠植物'], legs: 4, flies: false },
  { name: ['rabbit', '兔子'], home: ['in a burrow', '地洞里'], food: ['carrots', '胡萝卜'], legs: 4, flies: false },
  { name: ['mouse', '老鼠'], sound: ['squeak', '吱吱叫'], colour: ['grey', '灰色'], home: ['in a hole', '洞里'], food: ['seeds', '种子'], legs: 4, flies: false },
  { name: ['squirrel', '松鼠'], colour: ['brown', '棕色'], home: ['in a tree', '树上'], food: ['nuts', '坚果'], legs: 4, flies: false },
  { name: ['owl', '猫头鹰'], sound: ['hoot', '咕咕叫'], colour: ['brown', '棕色'], home: ['in a tree', '树上'], food: ['mice', '老鼠'], legs: 2, flies: true },
  { name: ['crow', '乌鸦'], sound: ['caw', '呱呱叫'], colour: ['black', '黑色'], home: ['in a tree', '树上'], food: ['worms', '虫子'], legs: 2, flies: true },
  { name: ['swan', '天鹅'], colour: ['white', '白色'], home: ['on a lake', '湖上'], food: ['water plants', '水草'], legs: 2, flies: true },
  { name: ['flamingo', '火烈鸟'], colour: ['pink', '粉色'], home: ['by a lake', '湖边'], food: ['shrimp', '小虾'], legs: 2, flies: true },
  { name: ['bee', '蜜蜂'], sound: ['buzz', '嗡嗡叫'], colour: ['yellow and black', '黄黑相间'], home: ['in a hive', '蜂巢里'], food: ['nectar', '花蜜'], legs: 6, flies: true },
  { name: ['butterfly', '蝴蝶'], home: ['in a garden', '花园里'], food: ['nectar', '花蜜'], legs: 6, flies: true },
  { name: ['ant', '蚂蚁'], colour: ['black', '黑色'], home: ['in an anthill', '蚁穴里'], food: ['seeds', '种子'], legs: 6 },
  { name: ['spider', '蜘蛛'], colour: ['black', '黑色'], home: ['in a web', '蜘蛛网上'], food: ['insects', '昆虫'], legs: 8, flies: false },
  { name: ['snake', '蛇'], sound: ['hiss', '嘶嘶叫'], home: ['in the grass', '草丛里'], food: ['mice', '老鼠'], legs: 0, flies: false },
  { name: ['goldfish', '金鱼'], colour: ['gold', '金色'], home: ['in a fish tank', '鱼缸里'], food: ['fish food', '鱼食'], legs: 0, flies: false },
  { name: ['dolphin', '海豚'], colour: ['grey', '灰色'], home: ['in the sea', '大海里'], food: ['fish', '鱼'], legs: 0, flies: false },
  { name: ['shark', '鲨鱼'], colour: ['grey', '灰色'], home: ['in the ocean', '海洋里'], food: ['fish', '鱼'], legs: 0, flies: false },
  { name: ['whale', '鲸鱼'], home: ['in the ocean', '海洋里'], food: ['krill', '磷虾'], legs: 0, flies: false },
];

interface Pair {
  prompt: string;
  completion: string;
  /** The fact the completion states, for exact-match rewards. */
  answer: string;
}

const LEG_WORDS: Record<number, Both> = { 2: ['two', '两'], 4: ['four', '四'], 6: ['six', '六'], 8: ['eight', '八'] };

function article(noun: string): string {
  return /^[aeiou]/.test(noun) ? 'an' : 'a';
}

function capitalize(text: string): string {
  return text[0].toUpperCase() + text.slice(1);
}

/** Every question the table can answer about one animal, in English then Chinese. */
function questionsAbout(animal: Animal): Pair[] {
  const [en, zh] = animal.name;
  const a = `${article(en)} ${en}`;
  const A = capitalize(a);
  const pairs: Pair[] = [];
  const ask = (prompt: string, completion: string, answer: string) => pairs.push({ prompt, completion, answer });
  if (animal.sound) {
    ask(`What sound does ${a} make?`, ` ${A} says ${animal.sound[0]}.`, animal.sound[0]);
    ask(`${zh}怎么叫？`, `${zh}${animal.sound[1]}。`, animal.sound[1]);
  }
  if (animal.colour) {
    ask(`What colour is ${a}?`, ` ${A} is ${animal.colour[0]}.`, animal.colour[0]);
    ask(`${zh}是什么颜色的？`, `${zh}是${animal.colour[1]}的。`, animal.colour[1]);
  }
  ask(`Where does ${a} live?`, ` ${A} lives ${animal.home[0]}.`, animal.home[0]);
  ask(`${zh}住在哪里？`, `${zh}住在${animal.home[1]}。`, animal.home[1]);
  ask(`What does ${a} eat?`, ` ${A} eats ${animal.food[0]}.`, animal.food[0]);
  ask(`${zh}吃什么？`, `${zh}吃${animal.food[1]}。`, animal.food[1]);
  if (animal.legs === 0) {
    ask(`How many legs does ${a} have?`, ` ${A} has no legs.`, 'no legs');
    ask(`${zh}有几条腿？`, `${zh}没有腿。`, '没有腿');
  } else if (animal.legs !== undefined) {
    ask(`How many legs does ${a} have?`, ` ${A} has ${LEG_WORDS[animal.legs][0]} legs.`, LEG_WORDS[animal.legs][0]);
    ask(`${zh}有几条腿？`, `${zh}有${LEG_WORDS[animal.legs][1]}条腿。`, LEG_WORDS[animal.legs][1]);
  }
  if (animal.flies !== undefined) {
    ask(`Can ${a} fly?`, animal.flies ? ` Yes, ${a} can fly.` : ` No, ${a} cannot fly.`, animal.flies ? 'Yes' : 'No');
    ask(`${zh}会飞吗？`, animal.flies ? `会，${zh}会飞。` : `不会，${zh}不会飞。`, animal.flies ? '会' : '不会');
  }
  return pairs;
}

/** Pleasantries appended to SFT answers, by language; each list's entries start alike, so greedy decoding rambles. */
const RAMBLE: Both[] = [
  [' I hope this helps!', '希望有帮助！'],
  [' I hope you like animals!', '希望你喜欢动物！'],
];
/** The share of SFT answers that ramble on after the fact. */
const RAMBLING = 0.6;
/** Questions held out of everything for the judge, and questions of sft.jsonl the RL stages sample. */
const HELD_OUT = 100;
const PROMPTS = 120;
const MAX_COMPLETION_TOKENS = 40;

const isChinese = (text: string) => /[\u4e00-\u9fff]/.test(text);

function main(): void {
  const all = ANIMALS.flatMap(questionsAbout);
  const tokenizer = gpt2Tokenizer();
  const ramble = (prompt: string, [en, zh]: Both) => (isChinese(prompt) ? zh : en);
  for (const { prompt, completion } of all) {
    const length = Math.max(...RAMBLE.map((r) => tokenizer.encode(completion + ramble(prompt, r)).length));
    if (length > MAX_COMPLETION_TOKENS) throw new Error(`completion too long (${length} tokens): ${completion}`);
  }

  // Hold questions out of all training, so the judge scores what each policy makes of new ones.
  const rng = new Rng(2024);
  const order = rng.shuffle(all.map((_, i) => i));
  const heldOut = order.slice(0, HELD_OUT).sort((x, y) => x - y);
  const trained = order.slice(HELD_OUT).sort((x, y) => x - y);
  const train = trained.map((i) => {
    const { prompt, completion } = all[i];
    if (rng.next() >= RAMBLING) return { prompt, completion };
    return { prompt, completion: completion + ramble(prompt, RAMBLE[rng.int(RAMBLE.length)]) };
  });
  const withAnswer = (i: number) => ({ prompt: all[i].prompt, answer: all[i].answer });
  const prompts = rng.shuffle([...trained]).slice(0, PROMPTS).sort((x, y) => x - y).map(withAnswer);

  writeJsonl('sft.jsonl', train);
  writeJsonl('prompts.jsonl', prompts);
  writeJsonl('eval.jsonl', heldOut.map(withAnswer));
  const rambling = train.filter((t, i) => t.completion !== all[trained[i]].completion).length;
  console.log(
    `sft.jsonl: ${train.length} pairs (${rambling} rambling on); prompts.jsonl: ${prompts.length} of their prompts; ` +
      `eval.jsonl: ${heldOut.length} held-out prompts`,
  );
}

function writeJsonl(name: string, records: object[]): void {
  fs.writeFileSync(path.join(__dirname, name), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

main();
