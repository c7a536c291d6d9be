"Regenerate the sample image and PDF used by the notebooks: `python samples/make_samples.py` (needs pillow, fpdf2)."
from pathlib import Path
from PIL import Image, ImageDraw
from fpdf import FPDF

here = Path(__file__).parent

def make_image(path):
    "A 320x200 PNG: a sunny hill with a red house under a blue sky."
    im = Image.new('RGB', (320, 200), (135, 200, 250))
    d = ImageDraw.Draw(im)
    d.ellipse((240, 20, 290, 70), fill=(255, 215, 0))
    d.ellipse((-80, 120, 400, 360), fill=(60, 170, 70))
    d.rectangle((110, 100, 170, 150), fill=(200, 40, 40))
    d.polygon([(100, 100), (140, 70), (180, 100)], fill=(120, 60, 30))
    d.rectangle((133, 125, 147, 150), fill=(90, 50, 20))
    im.save(path, optimize=True)

def make_pdf(path):
    "A one-page PDF of field notes with a title, an author and a few facts."
    pdf = FPDF()
    pdf.set_creation_date(__import__('datetime').datetime(2026, 1, 1))
    pdf.add_page()
    pdf.set_font('Helvetica', 'B', 18)
    pdf.cell(0, 12, 'Field notes: otters of the Lune estuary', new_x='LMARGIN', new_y='NEXT')
    pdf.set_font('Helvetica', '', 12)
    for line in ['Author: Ada Quill', 'Date: 2026-01-01', '',
                 'We counted 7 otters over 3 mornings.', 'The largest group, 4 otters, was seen at low tide.',
                 'Otters ate mostly crabs and small fish.']:
        pdf.cell(0, 8, line, new_x='LMARGIN', new_y='NEXT')
    pdf.output(str(path))

if __name__ == '__main__':
    make_image(here/'sunny_hill.png')
    make_pdf(here/'field_notes.pdf')
