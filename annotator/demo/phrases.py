"""The demo study's phrase bank: real words, answer templates, sentences and questions.

The demo's completions are assembled from these phrases so that the language-ID surrogate
(fastText ``lid.176``) meets real text and makes its real mistakes: one-word answers
(``casa`` is Spanish, Italian and Portuguese; ``犬`` is Chinese or Japanese), close languages
(Spanish, Romanian, French), Urdu against Arabic and Hindi, bare numbers and emoji. Simulated
mistakes would only reproduce whatever error model we assumed.

Every *variety* (a language as written) has the same slots, aligned by meaning across
varieties, so one index names one meaning everywhere:

* ``words``: one word per entry of :data:`CONCEPTS` (the short VQA answers and gold answers);
* ``templates``: short answer frames with one ``{}`` for a word ("The answer is: {}.");
  a colon before the slot keeps them grammatical in every language without inflection;
* ``sentences``: ten sentences of an image description, the material of long answers;
* ``questions`` (query languages only): one prompt per entry of :data:`QUESTION_TYPES`.

Besides the 14 study languages there are varieties for the catch-all classes: Italian,
Portuguese and Dutch (``other_latin``), Korean and Greek (``other``) and ``none`` (digits,
emoji, punctuation: text in no language).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["CONCEPTS", "CONCEPT_QUESTION", "QUESTION_TYPES", "VARIETIES", "Variety"]

#: The meanings of ``Variety.words``: the short answers (and gold answers) of the VQA tasks.
CONCEPTS: tuple[str, ...] = (
    "dog", "cat", "car", "bicycle", "apple", "tree", "house", "book",
    "man", "woman", "red", "blue", "two", "three", "yes", "no",
)

#: The prompts of ``Variety.questions``; the last two are open-ended (no single gold answer).
QUESTION_TYPES: tuple[str, ...] = (
    "animal", "object", "person", "color", "count", "yesno", "describe", "happening",
)

#: Concept -> the question it answers; wrong answers are drawn from the same question's concepts.
CONCEPT_QUESTION: Mapping[str, str] = {
    "dog": "animal", "cat": "animal",
    "car": "object", "bicycle": "object", "apple": "object",
    "tree": "object", "house": "object", "book": "object",
    "man": "person", "woman": "person",
    "red": "color", "blue": "color",
    "two": "count", "three": "count",
    "yes": "yesno", "no": "yesno",
}


@dataclass(frozen=True)
class Variety:
    """One written language: the answer class it counts as, and its aligned phrases."""

    code: str  #: ISO 639-3 (``zxx``, "no linguistic content", for the ``none`` class)
    answer_class: str  #: the study's answer-language class (``languages.ANSWER_CLASSES``)
    words: tuple[str, ...]  #: aligned with :data:`CONCEPTS`
    templates: tuple[str, ...]  #: each holds one ``{}``
    sentences: tuple[str, ...]  #: ten, aligned by meaning across varieties
    questions: tuple[str, ...] = field(default=())  #: aligned with :data:`QUESTION_TYPES`
    joiner: str = " "  #: between sentences ("" for Chinese and Japanese)


_VARIETIES: tuple[Variety, ...] = (
    Variety(
        code="eng",
        answer_class="english",
        words=("dog", "cat", "car", "bicycle", "apple", "tree", "house", "book",
               "man", "woman", "red", "blue", "two", "three", "yes", "no"),
        templates=("The answer is: {}.", "In the picture: {}.", "I think it is: {}."),
        sentences=(
            "The picture shows a busy street in a city.",
            "Several people are walking on the sidewalk.",
            "The sky is clear and the weather looks sunny.",
            "In the background there are tall buildings.",
            "A small dog is sitting next to its owner.",
            "The photo was probably taken in the afternoon.",
            "On the table there is a cup of coffee and a book.",
            "The man is wearing a blue jacket.",
            "I am not completely sure, but it looks like a market.",
            "Overall, the scene looks calm and friendly.",
        ),
        questions=(
            "What animal is in the picture?",
            "What object can you see in this image?",
            "Who is in the photo: a man or a woman?",
            "What color is the car?",
            "How many people are in the picture?",
            "Is there a dog in the picture?",
            "Describe the image in detail.",
            "What is happening in this picture?",
        ),
    ),
    Variety(
        code="zho",
        answer_class="chinese",
        words=("狗", "猫", "汽车", "自行车", "苹果", "树", "房子", "书",
               "男人", "女人", "红色", "蓝色", "两个", "三个", "是", "不是"),
        templates=("答案是：{}。", "图片中：{}。", "我认为是：{}。"),
        sentences=(
            "图片展示了城市里一条繁忙的街道。",
            "几个人正在人行道上走路。",
            "天空晴朗，天气看起来很好。",
            "背景中有高楼大厦。",
            "一只小狗坐在主人旁边。",
            "这张照片可能是在下午拍的。",
            "桌子上有一杯咖啡和一本书。",
            "那个男人穿着一件蓝色的夹克。",
            "我不太确定，但看起来像一个市场。",
            "总的来说，这个场景显得平静而友好。",
        ),
        questions=(
            "图片里是什么动物？",
            "这张图片里能看到什么物体？",
            "照片里是男人还是女人？",
            "这辆车是什么颜色的？",
            "图片里有几个人？",
            "图片里有狗吗？",
            "请详细描述这张图片。",
            "这张图片里发生了什么？",
        ),
        joiner="",
    ),
    Variety(
        code="hin",
        answer_class="hindi",
        words=("कुत्ता", "बिल्ली", "कार", "साइकिल", "सेब", "पेड़", "घर", "किताब",
               "आदमी", "औरत", "लाल", "नीला", "दो", "तीन", "हाँ", "नहीं"),
        templates=("उत्तर है: {}।", "तस्वीर में: {}।", "मुझे लगता है कि यह है: {}।"),
        sentences=(
            "तस्वीर में शहर की एक व्यस्त सड़क दिखाई दे रही है।",
            "कई लोग फुटपाथ पर चल रहे हैं।",
            "आसमान साफ़ है और मौसम धूप वाला लग रहा है।",
            "पीछे की ओर ऊँची इमारतें हैं।",
            "एक छोटा कुत्ता अपने मालिक के पास बैठा है।",
            "यह तस्वीर शायद दोपहर में ली गई थी।",
            "मेज़ पर एक कप कॉफ़ी और एक किताब रखी है।",
            "आदमी ने नीली जैकेट पहनी हुई है।",
            "मुझे पूरा यकीन नहीं है, लेकिन यह एक बाज़ार जैसा लगता है।",
            "कुल मिलाकर, दृश्य शांत और दोस्ताना लगता है।",
        ),
        questions=(
            "तस्वीर में कौन सा जानवर है?",
            "इस तस्वीर में कौन सी वस्तु दिखाई दे रही है?",
            "तस्वीर में कौन है: एक आदमी या एक औरत?",
            "कार का रंग क्या है?",
            "तस्वीर में कितने लोग हैं?",
            "क्या तस्वीर में कोई कुत्ता है?",
            "तस्वीर का विस्तार से वर्णन करें।",
            "इस तस्वीर में क्या हो रहा है?",
        ),
    ),
    Variety(
        code="heb",
        answer_class="hebrew",
        words=("כלב", "חתול", "מכונית", "אופניים", "תפוח", "עץ", "בית", "ספר",
               "גבר", "אישה", "אדום", "כחול", "שניים", "שלושה", "כן", "לא"),
        templates=("התשובה היא: {}.", "בתמונה: {}.", "אני חושב שזה: {}."),
        sentences=(
            "התמונה מראה רחוב הומה בעיר.",
            "כמה אנשים הולכים על המדרכה.",
            "השמיים בהירים ומזג האוויר נראה שמשי.",
            "ברקע יש בניינים גבוהים.",
            "כלב קטן יושב ליד הבעלים שלו.",
            "התמונה צולמה כנראה אחר הצהריים.",
            "על השולחן יש כוס קפה וספר.",
            "הגבר לובש ז'קט כחול.",
            "אני לא בטוח לגמרי, אבל זה נראה כמו שוק.",
            "באופן כללי, הסצנה נראית רגועה וידידותית.",
        ),
        questions=(
            "איזו חיה יש בתמונה?",
            "איזה חפץ רואים בתמונה הזו?",
            "מי בתמונה: גבר או אישה?",
            "באיזה צבע המכונית?",
            "כמה אנשים יש בתמונה?",
            "האם יש כלב בתמונה?",
            "תאר את התמונה בפירוט.",
            "מה קורה בתמונה הזו?",
        ),
    ),
    Variety(
        code="tha",
        answer_class="thai",
        words=("สุนัข", "แมว", "รถยนต์", "จักรยาน", "แอปเปิล", "ต้นไม้", "บ้าน", "หนังสือ",
               "ผู้ชาย", "ผู้หญิง", "สีแดง", "สีน้ำเงิน", "สอง", "สาม", "ใช่", "ไม่ใช่"),
        templates=("คำตอบคือ: {}", "ในภาพ: {}", "ฉันคิดว่าเป็น: {}"),
        sentences=(
            "ภาพนี้แสดงถนนที่พลุกพล่านในเมือง",
            "มีคนหลายคนกำลังเดินอยู่บนทางเท้า",
            "ท้องฟ้าแจ่มใสและอากาศดูมีแดด",
            "ด้านหลังมีอาคารสูงหลายหลัง",
            "สุนัขตัวเล็กนั่งอยู่ข้างเจ้าของ",
            "ภาพนี้น่าจะถ่ายในตอนบ่าย",
            "บนโต๊ะมีกาแฟหนึ่งแก้วและหนังสือหนึ่งเล่ม",
            "ผู้ชายคนนั้นสวมเสื้อแจ็คเก็ตสีน้ำเงิน",
            "ฉันไม่แน่ใจนัก แต่ดูเหมือนตลาด",
            "โดยรวมแล้ว บรรยากาศดูสงบและเป็นมิตร",
        ),
        questions=(
            "ในภาพมีสัตว์อะไร",
            "ในภาพนี้เห็นวัตถุอะไร",
            "ในภาพเป็นผู้ชายหรือผู้หญิง",
            "รถคันนี้สีอะไร",
            "ในภาพมีกี่คน",
            "ในภาพมีสุนัขไหม",
            "อธิบายภาพนี้อย่างละเอียด",
            "เกิดอะไรขึ้นในภาพนี้",
        ),
    ),
    Variety(
        code="ara",
        answer_class="arabic",
        words=("كلب", "قطة", "سيارة", "دراجة", "تفاحة", "شجرة", "منزل", "كتاب",
               "رجل", "امرأة", "أحمر", "أزرق", "اثنان", "ثلاثة", "نعم", "لا"),
        templates=("الإجابة هي: {}.", "في الصورة: {}.", "أعتقد أنه: {}."),
        sentences=(
            "تُظهر الصورة شارعًا مزدحمًا في مدينة.",
            "يمشي عدة أشخاص على الرصيف.",
            "السماء صافية ويبدو الطقس مشمسًا.",
            "توجد مبانٍ عالية في الخلفية.",
            "يجلس كلب صغير بجانب صاحبه.",
            "التُقطت الصورة على الأرجح بعد الظهر.",
            "على الطاولة فنجان قهوة وكتاب.",
            "يرتدي الرجل سترة زرقاء.",
            "لست متأكدًا تمامًا، لكنه يبدو مثل سوق.",
            "بشكل عام، يبدو المشهد هادئًا وودودًا.",
        ),
        questions=(
            "ما الحيوان الموجود في الصورة؟",
            "ما الشيء الذي يظهر في هذه الصورة؟",
            "من في الصورة: رجل أم امرأة؟",
            "ما لون السيارة؟",
            "كم عدد الأشخاص في الصورة؟",
            "هل يوجد كلب في الصورة؟",
            "صف الصورة بالتفصيل.",
            "ماذا يحدث في هذه الصورة؟",
        ),
    ),
    Variety(
        code="ben",
        answer_class="bengali",
        words=("কুকুর", "বিড়াল", "গাড়ি", "সাইকেল", "আপেল", "গাছ", "বাড়ি", "বই",
               "পুরুষ", "মহিলা", "লাল", "নীল", "দুই", "তিন", "হ্যাঁ", "না"),
        templates=("উত্তর হলো: {}।", "ছবিতে: {}।", "আমার মনে হয় এটা: {}।"),
        sentences=(
            "ছবিতে শহরের একটি ব্যস্ত রাস্তা দেখা যাচ্ছে।",
            "কয়েকজন মানুষ ফুটপাথ দিয়ে হাঁটছে।",
            "আকাশ পরিষ্কার এবং আবহাওয়া রৌদ্রোজ্জ্বল মনে হচ্ছে।",
            "পেছনে উঁচু উঁচু ভবন রয়েছে।",
            "একটি ছোট কুকুর তার মালিকের পাশে বসে আছে।",
            "ছবিটি সম্ভবত বিকেলে তোলা হয়েছে।",
            "টেবিলের উপর এক কাপ কফি আর একটি বই আছে।",
            "লোকটি একটি নীল জ্যাকেট পরে আছে।",
            "আমি পুরোপুরি নিশ্চিত নই, তবে এটা একটা বাজারের মতো দেখাচ্ছে।",
            "সব মিলিয়ে দৃশ্যটি শান্ত ও বন্ধুত্বপূর্ণ মনে হচ্ছে।",
        ),
        questions=(
            "ছবিতে কোন প্রাণী আছে?",
            "এই ছবিতে কোন জিনিসটি দেখা যাচ্ছে?",
            "ছবিতে কে আছে: একজন পুরুষ না একজন মহিলা?",
            "গাড়িটির রং কী?",
            "ছবিতে কতজন মানুষ আছে?",
            "ছবিতে কি কোনো কুকুর আছে?",
            "ছবিটি বিস্তারিতভাবে বর্ণনা করো।",
            "এই ছবিতে কী ঘটছে?",
        ),
    ),
    Variety(
        code="jpn",
        answer_class="japanese",
        words=("犬", "猫", "車", "自転車", "りんご", "木", "家", "本",
               "男性", "女性", "赤", "青", "二人", "三人", "はい", "いいえ"),
        templates=("答えは「{}」です。", "画像には：{}。", "{}だと思います。"),
        sentences=(
            "画像には都会のにぎやかな通りが写っています。",
            "何人かの人が歩道を歩いています。",
            "空は晴れていて、天気が良さそうです。",
            "背景には高いビルが見えます。",
            "小さな犬が飼い主の隣に座っています。",
            "この写真はおそらく午後に撮られたものです。",
            "テーブルの上にコーヒーカップと本があります。",
            "その男性は青いジャケットを着ています。",
            "はっきりとは分かりませんが、市場のように見えます。",
            "全体的に、穏やかで親しみやすい雰囲気です。",
        ),
        questions=(
            "写真にはどんな動物がいますか？",
            "この画像には何が写っていますか？",
            "写真に写っているのは男性ですか、女性ですか？",
            "車は何色ですか？",
            "画像には何人いますか？",
            "画像に犬はいますか？",
            "この画像を詳しく説明してください。",
            "この写真では何が起きていますか？",
        ),
        joiner="",
    ),
    Variety(
        code="spa",
        answer_class="spanish",
        words=("perro", "gato", "coche", "bicicleta", "manzana", "árbol", "casa", "libro",
               "hombre", "mujer", "rojo", "azul", "dos", "tres", "sí", "no"),
        templates=("La respuesta es: {}.", "En la imagen: {}.", "Creo que es: {}."),
        sentences=(
            "La imagen muestra una calle concurrida de una ciudad.",
            "Varias personas caminan por la acera.",
            "El cielo está despejado y el tiempo parece soleado.",
            "Al fondo hay edificios altos.",
            "Un perro pequeño está sentado junto a su dueño.",
            "Probablemente la foto fue tomada por la tarde.",
            "Sobre la mesa hay una taza de café y un libro.",
            "El hombre lleva una chaqueta azul.",
            "No estoy completamente seguro, pero parece un mercado.",
            "En general, la escena parece tranquila y amable.",
        ),
        questions=(
            "¿Qué animal hay en la imagen?",
            "¿Qué objeto se ve en esta imagen?",
            "¿Quién aparece en la foto: un hombre o una mujer?",
            "¿De qué color es el coche?",
            "¿Cuántas personas hay en la imagen?",
            "¿Hay un perro en la imagen?",
            "Describe la imagen con detalle.",
            "¿Qué está pasando en esta imagen?",
        ),
    ),
    Variety(
        code="deu",
        answer_class="german",
        words=("Hund", "Katze", "Auto", "Fahrrad", "Apfel", "Baum", "Haus", "Buch",
               "Mann", "Frau", "rot", "blau", "zwei", "drei", "ja", "nein"),
        templates=("Die Antwort ist: {}.", "Auf dem Bild: {}.", "Ich glaube, es ist: {}."),
        sentences=(
            "Das Bild zeigt eine belebte Straße in einer Stadt.",
            "Mehrere Menschen gehen auf dem Bürgersteig.",
            "Der Himmel ist klar und das Wetter sieht sonnig aus.",
            "Im Hintergrund stehen hohe Gebäude.",
            "Ein kleiner Hund sitzt neben seinem Besitzer.",
            "Das Foto wurde wahrscheinlich am Nachmittag aufgenommen.",
            "Auf dem Tisch steht eine Tasse Kaffee neben einem Buch.",
            "Der Mann trägt eine blaue Jacke.",
            "Ich bin mir nicht ganz sicher, aber es sieht aus wie ein Markt.",
            "Insgesamt wirkt die Szene ruhig und freundlich.",
        ),
        questions=(
            "Welches Tier ist auf dem Bild?",
            "Welcher Gegenstand ist auf diesem Bild zu sehen?",
            "Wer ist auf dem Foto: ein Mann oder eine Frau?",
            "Welche Farbe hat das Auto?",
            "Wie viele Menschen sind auf dem Bild?",
            "Ist auf dem Bild ein Hund zu sehen?",
            "Beschreibe das Bild ausführlich.",
            "Was passiert auf diesem Bild?",
        ),
    ),
    Variety(
        code="fra",
        answer_class="french",
        words=("chien", "chat", "voiture", "vélo", "pomme", "arbre", "maison", "livre",
               "homme", "femme", "rouge", "bleu", "deux", "trois", "oui", "non"),
        templates=("La réponse est : {}.", "Sur l'image : {}.", "Je pense que c'est : {}."),
        sentences=(
            "L'image montre une rue animée dans une ville.",
            "Plusieurs personnes marchent sur le trottoir.",
            "Le ciel est dégagé et il semble faire beau.",
            "À l'arrière-plan, on voit de grands immeubles.",
            "Un petit chien est assis à côté de son maître.",
            "La photo a probablement été prise l'après-midi.",
            "Sur la table, il y a une tasse de café et un livre.",
            "L'homme porte une veste bleue.",
            "Je n'en suis pas tout à fait sûr, mais cela ressemble à un marché.",
            "Dans l'ensemble, la scène paraît calme et conviviale.",
        ),
        questions=(
            "Quel animal y a-t-il sur l'image ?",
            "Quel objet voit-on sur cette image ?",
            "Qui est sur la photo : un homme ou une femme ?",
            "De quelle couleur est la voiture ?",
            "Combien de personnes y a-t-il sur l'image ?",
            "Y a-t-il un chien sur l'image ?",
            "Décris l'image en détail.",
            "Que se passe-t-il sur cette image ?",
        ),
    ),
    Variety(
        code="ron",
        answer_class="romanian",
        words=("câine", "pisică", "mașină", "bicicletă", "măr", "copac", "casă", "carte",
               "bărbat", "femeie", "roșu", "albastru", "doi", "trei", "da", "nu"),
        templates=("Răspunsul este: {}.", "În imagine: {}.", "Cred că este: {}."),
        sentences=(
            "Imaginea arată o stradă aglomerată dintr-un oraș.",
            "Mai mulți oameni merg pe trotuar.",
            "Cerul este senin și vremea pare însorită.",
            "În fundal se văd clădiri înalte.",
            "Un câine mic stă lângă stăpânul său.",
            "Fotografia a fost făcută probabil după-amiaza.",
            "Pe masă se află o ceașcă de cafea și o carte.",
            "Bărbatul poartă o jachetă albastră.",
            "Nu sunt complet sigur, dar pare a fi o piață.",
            "În general, scena pare liniștită și prietenoasă.",
        ),
        questions=(
            "Ce animal este în imagine?",
            "Ce obiect se vede în această imagine?",
            "Cine este în fotografie: un bărbat sau o femeie?",
            "Ce culoare are mașina?",
            "Câți oameni sunt în imagine?",
            "Există un câine în imagine?",
            "Descrie imaginea în detaliu.",
            "Ce se întâmplă în această imagine?",
        ),
    ),
    Variety(
        code="rus",
        answer_class="russian",
        words=("собака", "кошка", "машина", "велосипед", "яблоко", "дерево", "дом", "книга",
               "мужчина", "женщина", "красный", "синий", "два", "три", "да", "нет"),
        templates=("Ответ: {}.", "На картинке: {}.", "Думаю, это: {}."),
        sentences=(
            "На изображении видна оживлённая улица в городе.",
            "Несколько человек идут по тротуару.",
            "Небо ясное, и погода кажется солнечной.",
            "На заднем плане видны высокие здания.",
            "Маленькая собака сидит рядом со своим хозяином.",
            "Скорее всего, фотография была сделана днём.",
            "На столе стоит чашка кофе и лежит книга.",
            "Мужчина одет в синюю куртку.",
            "Я не совсем уверен, но это похоже на рынок.",
            "В целом сцена выглядит спокойной и дружелюбной.",
        ),
        questions=(
            "Какое животное на картинке?",
            "Какой предмет виден на этом изображении?",
            "Кто на фото: мужчина или женщина?",
            "Какого цвета машина?",
            "Сколько людей на картинке?",
            "Есть ли на картинке собака?",
            "Опиши изображение подробно.",
            "Что происходит на этой картинке?",
        ),
    ),
    Variety(
        code="urd",
        answer_class="urdu",
        words=("کتا", "بلی", "گاڑی", "سائیکل", "سیب", "درخت", "گھر", "کتاب",
               "آدمی", "عورت", "لال", "نیلا", "دو", "تین", "ہاں", "نہیں"),
        templates=("جواب ہے: {}۔", "تصویر میں: {}۔", "میرے خیال میں یہ ہے: {}۔"),
        sentences=(
            "تصویر میں شہر کی ایک مصروف سڑک دکھائی دے رہی ہے۔",
            "کئی لوگ فٹ پاتھ پر چل رہے ہیں۔",
            "آسمان صاف ہے اور موسم دھوپ والا لگ رہا ہے۔",
            "پس منظر میں اونچی عمارتیں ہیں۔",
            "ایک چھوٹا کتا اپنے مالک کے پاس بیٹھا ہے۔",
            "یہ تصویر شاید دوپہر کو لی گئی تھی۔",
            "میز پر ایک کپ کافی اور ایک کتاب رکھی ہے۔",
            "آدمی نے نیلی جیکٹ پہنی ہوئی ہے۔",
            "مجھے پورا یقین نہیں ہے، لیکن یہ ایک بازار جیسا لگتا ہے۔",
            "مجموعی طور پر، منظر پرسکون اور دوستانہ لگتا ہے۔",
        ),
        questions=(
            "تصویر میں کون سا جانور ہے؟",
            "اس تصویر میں کون سی چیز نظر آ رہی ہے؟",
            "تصویر میں کون ہے: ایک آدمی یا ایک عورت؟",
            "گاڑی کا رنگ کیا ہے؟",
            "تصویر میں کتنے لوگ ہیں؟",
            "کیا تصویر میں کوئی کتا ہے؟",
            "تصویر کو تفصیل سے بیان کریں۔",
            "اس تصویر میں کیا ہو رہا ہے؟",
        ),
    ),
    # --- other Latin-script languages: the ``other_latin`` class ---
    Variety(
        code="ita",
        answer_class="other_latin",
        words=("cane", "gatto", "macchina", "bicicletta", "mela", "albero", "casa", "libro",
               "uomo", "donna", "rosso", "blu", "due", "tre", "sì", "no"),
        templates=("La risposta è: {}.", "Nell'immagine: {}.", "Penso che sia: {}."),
        sentences=(
            "L'immagine mostra una strada trafficata in una città.",
            "Diverse persone camminano sul marciapiede.",
            "Il cielo è sereno e il tempo sembra soleggiato.",
            "Sullo sfondo ci sono edifici alti.",
            "Un piccolo cane è seduto accanto al suo padrone.",
            "La foto è stata scattata probabilmente nel pomeriggio.",
            "Sul tavolo ci sono una tazza di caffè e un libro.",
            "L'uomo indossa una giacca blu.",
            "Non ne sono del tutto sicuro, ma sembra un mercato.",
            "Nel complesso, la scena appare tranquilla e cordiale.",
        ),
    ),
    Variety(
        code="por",
        answer_class="other_latin",
        words=("cachorro", "gato", "carro", "bicicleta", "maçã", "árvore", "casa", "livro",
               "homem", "mulher", "vermelho", "azul", "dois", "três", "sim", "não"),
        templates=("A resposta é: {}.", "Na imagem: {}.", "Acho que é: {}."),
        sentences=(
            "A imagem mostra uma rua movimentada em uma cidade.",
            "Várias pessoas estão caminhando na calçada.",
            "O céu está limpo e o tempo parece ensolarado.",
            "Ao fundo há prédios altos.",
            "Um cachorro pequeno está sentado ao lado do dono.",
            "A foto provavelmente foi tirada à tarde.",
            "Em cima da mesa há uma xícara de café e um livro.",
            "O homem está usando uma jaqueta azul.",
            "Não tenho certeza absoluta, mas parece um mercado.",
            "No geral, a cena parece calma e amigável.",
        ),
    ),
    Variety(
        code="nld",
        answer_class="other_latin",
        words=("hond", "kat", "auto", "fiets", "appel", "boom", "huis", "boek",
               "man", "vrouw", "rood", "blauw", "twee", "drie", "ja", "nee"),
        templates=("Het antwoord is: {}.", "Op de afbeelding: {}.", "Ik denk dat het is: {}."),
        sentences=(
            "De afbeelding toont een drukke straat in een stad.",
            "Een paar mensen lopen op de stoep.",
            "De lucht is helder en het weer ziet er zonnig uit.",
            "Op de achtergrond staan hoge gebouwen.",
            "Een kleine hond zit naast zijn baasje.",
            "De foto is waarschijnlijk in de middag genomen.",
            "Op de tafel staan een kop koffie en een boek.",
            "De man draagt een blauwe jas.",
            "Ik weet het niet helemaal zeker, maar het lijkt op een markt.",
            "Al met al ziet de scène er rustig en vriendelijk uit.",
        ),
    ),
    # --- scripts of no study language: the ``other`` class ---
    Variety(
        code="kor",
        answer_class="other",
        words=("개", "고양이", "자동차", "자전거", "사과", "나무", "집", "책",
               "남자", "여자", "빨간색", "파란색", "둘", "셋", "네", "아니요"),
        templates=("정답은: {}.", "사진 속: {}.", "제 생각에는: {}."),
        sentences=(
            "이 사진은 도시의 번화한 거리를 보여 줍니다.",
            "여러 사람이 인도를 걷고 있습니다.",
            "하늘은 맑고 날씨는 화창해 보입니다.",
            "배경에는 높은 건물들이 있습니다.",
            "작은 개가 주인 옆에 앉아 있습니다.",
            "이 사진은 아마 오후에 찍은 것 같습니다.",
            "테이블 위에 커피 한 잔과 책 한 권이 있습니다.",
            "남자는 파란색 재킷을 입고 있습니다.",
            "확실하지는 않지만 시장처럼 보입니다.",
            "전체적으로 장면이 평온하고 친근해 보입니다.",
        ),
    ),
    Variety(
        code="ell",
        answer_class="other",
        words=("σκύλος", "γάτα", "αυτοκίνητο", "ποδήλατο", "μήλο", "δέντρο", "σπίτι", "βιβλίο",
               "άντρας", "γυναίκα", "κόκκινο", "μπλε", "δύο", "τρία", "ναι", "όχι"),
        templates=("Η απάντηση είναι: {}.", "Στην εικόνα: {}.", "Νομίζω ότι είναι: {}."),
        sentences=(
            "Η εικόνα δείχνει έναν πολυσύχναστο δρόμο σε μια πόλη.",
            "Αρκετοί άνθρωποι περπατούν στο πεζοδρόμιο.",
            "Ο ουρανός είναι καθαρός και ο καιρός φαίνεται ηλιόλουστος.",
            "Στο βάθος υπάρχουν ψηλά κτίρια.",
            "Ένας μικρός σκύλος κάθεται δίπλα στο αφεντικό του.",
            "Η φωτογραφία τραβήχτηκε μάλλον το απόγευμα.",
            "Στο τραπέζι υπάρχει ένα φλιτζάνι καφέ και ένα βιβλίο.",
            "Ο άντρας φοράει ένα μπλε μπουφάν.",
            "Δεν είμαι απόλυτα σίγουρος, αλλά μοιάζει με αγορά.",
            "Συνολικά, η σκηνή φαίνεται ήρεμη και φιλική.",
        ),
    ),
    # --- no language at all: digits, emoji, punctuation (the ``none`` class) ---
    Variety(
        code="zxx",
        answer_class="none",
        words=("🐶", "🐱", "🚗", "🚲", "🍎", "🌳", "🏠", "📖",
               "👨", "👩", "🔴", "🔵", "2", "3", "✅", "❌"),
        templates=("{}", "→ {}", "{} 👍"),
        sentences=("👍", "😊", "🙂🙂", "...", "42", "1, 2, 3", "100%", "12:30", "2024", "👀"),
    ),
)

#: ISO 639-3 code (``zxx`` for no language) -> variety, in a fixed order.
VARIETIES: Mapping[str, Variety] = {variety.code: variety for variety in _VARIETIES}


def _check() -> None:
    # Alignment is what lets one index mean one thing in every language: fail at import if not.
    reference = _VARIETIES[0]
    for variety in _VARIETIES:
        if (
            len(variety.words) != len(CONCEPTS)
            or len(variety.sentences) != len(reference.sentences)
            or len(variety.templates) != len(reference.templates)
            or any(template.count("{}") != 1 for template in variety.templates)
            or (variety.questions and len(variety.questions) != len(QUESTION_TYPES))
        ):
            raise ValueError(f"phrase bank of {variety.code!r} is not aligned with the others")
    if set(CONCEPT_QUESTION) != set(CONCEPTS):
        raise ValueError("every concept needs exactly one question type")


_check()
