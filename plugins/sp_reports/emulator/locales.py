"""Localized text pools for generated documents.

Every string must be encodable in the codec of each marketplace that uses the locale (cp1252 for
the EU locales, cp932 for ja); the tests check this. Some product names contain a double quote
because Amazon's flat files are unquoted and such names do occur.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Locale:
    products: tuple[str, ...]
    descriptions: tuple[str, ...]
    # (city, state/region, postal code pattern where # is a digit)
    places: tuple[tuple[str, str, str], ...]
    given_names: tuple[str, ...]
    family_names: tuple[str, ...]
    streets: tuple[str, ...]
    comments: tuple[str, ...]
    shipping_group: str
    carriers: tuple[str, ...]
    fulfillment_centers: tuple[str, ...]
    family_name_first: bool = False


LOCALES: dict[str, Locale] = {
    "en_US": Locale(
        products=(
            "Stainless Steel Water Bottle, 32 oz",
            "USB-C Charging Cable 6 ft (2-Pack)",
            'Gaming Monitor 27" QHD 165Hz',
            "Organic Green Tea, 100 Bags",
            "Wireless Mouse, Silent Click",
            "Kids' Rain Boots, Yellow",
            'Cast Iron Skillet 12"',
            "LED Desk Lamp with USB Port",
            "Yoga Mat 6mm, Non-Slip",
            "Noise Cancelling Headphones",
        ),
        descriptions=("Brand new in original packaging.", "Ships from our US warehouse.", ""),
        places=(
            ("Seattle", "WA", "981##"),
            ("Austin", "TX", "787##"),
            ("Brooklyn", "NY", "112##"),
            ("Portland", "OR", "972##"),
            ("Miami", "FL", "331##"),
        ),
        given_names=("James", "Mary", "Robert", "Patricia", "Linda", "Michael"),
        family_names=("Smith", "Johnson", "Garcia", "O'Brien", "Nguyen", "Miller"),
        streets=("123 Main St", "45 Oak Avenue", "900 Pine St Apt 4B", "7 Elm Court"),
        comments=("Item arrived damaged", "Ordered the wrong size", "No longer needed", ""),
        shipping_group="Migrated Template",
        carriers=("AMZN_US", "UPS", "USPS", "FedEx"),
        fulfillment_centers=("PHX6", "SEA8", "BFI4", "MDW2", "JFK8"),
    ),
    "en_GB": Locale(
        products=(
            "Electric Kettle 1.7 L, Stainless Steel",
            "Tea Towels, Pack of 3",
            'Wall Clock 12" Silent Sweep',
            "Wool Scarf, Tartan Pattern",
            "Garden Hose 30 m with Spray Gun",
            "Umbrella, Windproof, Black",
            "Cotton Bed Sheets, Double",
            "Phone Case for iPhone 15",
            "Gift Card £25",
        ),
        descriptions=("Brand new, boxed.", "Gift voucher worth £10 included.", ""),
        places=(
            ("London", "Greater London", "SW1A #AA"),
            ("Manchester", "Greater Manchester", "M# #AB"),
            ("Leeds", "West Yorkshire", "LS# #XY"),
            ("Bristol", "Avon", "BS# #QT"),
        ),
        given_names=("Oliver", "Amelia", "Harry", "Isla", "George", "Siobhán"),
        family_names=("Jones", "Taylor", "Brown", "Wilson", "O'Neill", "Evans"),
        streets=("10 High Street", "22 Church Lane", "Flat 3, 5 Victoria Road", "8 Mill Close"),
        comments=("Arrived damaged", "Not as described", "Changed my mind", ""),
        shipping_group="Migrated Template",
        carriers=("AMZN_UK", "Royal Mail", "DPD", "Evri"),
        fulfillment_centers=("LTN1", "BHX4", "MAN1", "EDI4"),
    ),
    "de": Locale(
        products=(
            "Edelstahl-Trinkflasche 1 l, auslaufsicher",
            "Küchenmesser-Set, 5-teilig",
            "Bürostuhl ergonomisch, höhenverstellbar",
            'Fußmatte "Willkommen" 60×40 cm',
            "Grüner Tee Bio, 100 Beutel",
            "Wärmflasche mit Strickbezug",
            "Gießkanne 10 l, grün",
            "Schreibtischlampe LED, dimmbar – weiß",
            "Geschenkgutschein 25 €",
        ),
        descriptions=("Neu und originalverpackt.", "Lieferung inkl. 19 % MwSt., Preis in €.", ""),
        places=(
            ("München", "Bayern", "80###"),
            ("Köln", "Nordrhein-Westfalen", "50###"),
            ("Düsseldorf", "Nordrhein-Westfalen", "40###"),
            ("Berlin", "Berlin", "10###"),
            ("Nürnberg", "Bayern", "90###"),
        ),
        given_names=("Jürgen", "Sören", "Anna", "Lukas", "Mia", "Björn"),
        family_names=("Müller", "Schäfer", "Groß", "Weiß", "Köhler", "Becker"),
        streets=("Hauptstraße 12", "Königsallee 5", "Große Gasse 3a", "Lindenstraße 77"),
        comments=("Artikel beschädigt angekommen", "Falsche Größe bestellt", "Gefällt mir nicht", ""),
        shipping_group="Standardvorlage Amazon",
        carriers=("DHL", "Hermes", "DPD", "AMZN_DE"),
        fulfillment_centers=("FRA3", "MUC3", "LEJ1", "DUS2"),
    ),
    "fr": Locale(
        products=(
            "Cafetière à piston 1 L",
            "Crème hydratante visage, 50 ml",
            "Sac à dos étanche 30 L",
            "Écouteurs sans fil Bluetooth",
            'Poêle "Maître Chef" 28 cm',
            "Théière en fonte, 800 ml",
            "Bougie parfumée – vanille & cœur de rose",
            "Carte cadeau 25 €",
        ),
        descriptions=("Neuf, emballage d'origine.", "Prix TTC en € (TVA 20 %).", ""),
        places=(
            ("Paris", "Île-de-France", "750##"),
            ("Besançon", "Doubs", "250##"),
            ("Orléans", "Loiret", "450##"),
            ("Nîmes", "Gard", "300##"),
        ),
        given_names=("Hélène", "François", "Zoé", "Jérôme", "Chloé", "Noël"),
        family_names=("Lefèvre", "Dubois", "Girard", "Bérénger", "Moreau", "Lemaître"),
        streets=("12 rue de la Paix", "3 allée des Érables", "45 boulevard Saint-Michel", "8 place du Marché"),
        comments=("Article endommagé à la réception", "Ne correspond pas à la description", "Trop petit", ""),
        shipping_group="Modèle Amazon par défaut",
        carriers=("Colissimo", "Chronopost", "AMZN_FR"),
        fulfillment_centers=("ORY1", "MRS1", "LIL1", "BVA1"),
    ),
    "it": Locale(
        products=(
            "Caffè macinato, 250 g",
            "Lampada da scrivania a LED, luminosità regolabile",
            "Moka 3 tazze, alluminio",
            'Tagliere in legno "Cucina Più"',
            "Borraccia termica 500 ml",
            "Set di pentole antiaderenti, 5 pezzi",
            "Buono regalo 25 €",
        ),
        descriptions=("Nuovo, confezione originale.", "Prezzo IVA inclusa in €.", ""),
        places=(
            ("Milano", "MI", "201##"),
            ("Forlì", "FC", "471##"),
            ("Cantù", "CO", "220##"),
            ("Roma", "RM", "001##"),
        ),
        given_names=("Niccolò", "Giulia", "Mattia", "Chiara", "Nicolò", "Francesca"),
        family_names=("Rossi", "Bianchi", "Ferrari", "Esposito", "D'Angelo", "Colombo"),
        streets=("Via Roma 12", "Corso Venezia 5", "Piazza Duomo 1", "Via Garibaldi 44"),
        comments=("Articolo arrivato danneggiato", "Non è come descritto", "Taglia sbagliata", ""),
        shipping_group="Modello Amazon predefinito",
        carriers=("BRT", "Poste Italiane", "AMZN_IT"),
        fulfillment_centers=("MXP5", "FCO1", "BLQ1", "TRN1"),
    ),
    "es": Locale(
        products=(
            "Cafetera italiana de acero, 6 tazas",
            "Auriculares inalámbricos con cancelación de ruido",
            "Piñata de cumpleaños, diseño estrella",
            'Sartén "Señorío" 24 cm',
            "Almohada viscoelástica, 70 cm",
            "Mochila de montaña, 40 L",
            "Tarjeta regalo 25 €",
        ),
        descriptions=("Nuevo, en su embalaje original.", "Precio con IVA incluido en €.", ""),
        places=(
            ("Madrid", "Madrid", "280##"),
            ("A Coruña", "A Coruña", "150##"),
            ("Cádiz", "Cádiz", "110##"),
            ("Málaga", "Málaga", "290##"),
        ),
        given_names=("José", "María", "Iñaki", "Lucía", "Ramón", "Begoña"),
        family_names=("García", "Fernández", "Muñoz", "Martínez", "Ibáñez", "López"),
        streets=("Calle Mayor 12", "Avenida de la Constitución 5", "Plaza España 3, 2º B", "Calle Núñez 8"),
        comments=("El artículo llegó dañado", "No es lo que esperaba", "Talla equivocada", ""),
        shipping_group="Plantilla de Amazon predeterminada",
        carriers=("Correos", "SEUR", "AMZN_ES"),
        fulfillment_centers=("MAD4", "BCN1", "SVQ1", "VLC1"),
    ),
    "ja": Locale(
        # ①, 髙 and ～ exist only in cp932 (Windows-31J), not in strict Shift_JIS.
        products=(
            "髙島屋セレクト 緑茶ティーバッグ 100袋",
            "ステンレス水筒 500ml ①ブラック",
            "ワイヤレスマウス 静音 ～2.4GHz～",
            "USB-C ケーブル 2m（2本セット）",
            '羽毛布団 シングル "プレミアム"',
            "土鍋 9号 ～3～4人用～",
            "電気ケトル 1.0L ②ホワイト",
        ),
        descriptions=("新品・未開封です。", "国内倉庫より発送します。", ""),
        places=(
            ("港区", "東京都", "10#-####"),
            ("横浜市青葉区", "神奈川県", "22#-####"),
            ("大阪市北区", "大阪府", "53#-####"),
            ("髙松市", "香川県", "76#-####"),
            ("札幌市中央区", "北海道", "06#-####"),
        ),
        given_names=("一郎", "花子", "翔太", "美咲", "健", "由美"),
        family_names=("髙橋", "佐藤", "鈴木", "田中", "渡辺", "伊藤"),
        streets=("六本木1-2-3", "青葉台2-10-1 ①号室", "梅田3-1-1", "大通西4-5"),
        comments=("商品が破損していました", "イメージと違いました", "サイズ違い", ""),
        shipping_group="Amazon配送テンプレート",
        carriers=("ヤマト運輸", "佐川急便", "日本郵便", "AMZN_JP"),
        fulfillment_centers=("NRT1", "NRT5", "KIX1", "FSZ1"),
        family_name_first=True,
    ),
}
